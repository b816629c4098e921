"""Texts for the cli layer: the ``fedgate`` command's lines, headings and errors, and the words for partner and
gateway fields (what is wrong with a value, what a field allows)."""

MESSAGES: dict[str, dict[str, str]] = {
    # Line prefixes: every error and warning is one line.
    "cli.line.error": {"en": "error: {message}", "zh-TW": "錯誤：{message}", "ja": "エラー：{message}"},
    "cli.line.warning": {"en": "warning: {message}", "zh-TW": "警告：{message}", "ja": "警告：{message}"},
    "cli.list_separator": {"en": ", ", "zh-TW": "、", "ja": "、"},
    # Errors (exit 2: usage; exit 1: refused)
    "cli.error.value": {
        "en": "{field}: '{value}' is not allowed. Allowed: {allowed}",
        "zh-TW": "{field}：不接受「{value}」。可用的值：{allowed}",
        "ja": "{field}：「{value}」は指定できません。指定できる値：{allowed}",
    },
    "cli.error.value_problem": {
        "en": "{field}: '{value}' is not allowed ({problem}). Allowed: {allowed}",
        "zh-TW": "{field}：不接受「{value}」（{problem}）。可用的值：{allowed}",
        "ja": "{field}：「{value}」は指定できません（{problem}）。指定できる値：{allowed}",
    },
    "cli.error.invalid_settings": {
        "en": "{field}: {value} refused, no authentication method could ever succeed; nothing was changed. "
        "Allowed: {allowed}",
        "zh-TW": "{field}：拒絕 {value}，這樣的設定沒有任何驗證方式能成功，因此未做任何變更。可用的值：{allowed}",
        "ja": "{field}：{value} は受け付けられません。どの認証方式も成功しないため、何も変更していません。"
        "指定できる値：{allowed}",
    },
    "cli.error.missing": {
        "en": "{field}: a value is required. Allowed: {allowed}",
        "zh-TW": "{field}：必須指定。可用的值：{allowed}",
        "ja": "{field}：指定が必要です。指定できる値：{allowed}",
    },
    "cli.error.no_such_option": {
        "en": "{option}: no such option. Allowed: {allowed}",
        "zh-TW": "{option}：沒有這個選項。可用的選項：{allowed}",
        "ja": "{option}：そのようなオプションはありません。使えるオプション：{allowed}",
    },
    "cli.error.no_such_command": {
        "en": "{command}: no such command. Allowed: {allowed}",
        "zh-TW": "{command}：沒有這個指令。可用的指令：{allowed}",
        "ja": "{command}：そのようなコマンドはありません。使えるコマンド：{allowed}",
    },
    "cli.error.requires_value": {
        "en": "{option}: needs a value after it. Allowed: {allowed}",
        "zh-TW": "{option}：後面必須接一個值。可用的值：{allowed}",
        "ja": "{option}：後ろに値が必要です。指定できる値：{allowed}",
    },
    "cli.error.takes_no_value": {
        "en": "{option}: takes no value; give the option on its own. Allowed: {allowed}",
        "zh-TW": "{option}：不接受值，請單獨使用這個選項。可用的寫法：{allowed}",
        "ja": "{option}：値は取りません。オプションだけを指定してください。使える形：{allowed}",
    },
    "cli.error.extra_arguments": {
        "en": "{arguments}: more arguments than the command takes (quote a value that contains spaces). "
        "Allowed: {usage}",
        "zh-TW": "{arguments}：引數比這個指令所接受的還多（含空白的值請加上引號）。可用的寫法：{usage}",
        "ja": "{arguments}：このコマンドが受け取るより多くの引数があります（空白を含む値は引用符で囲んでください）。"
        "使える形：{usage}",
    },
    "cli.error.usage": {
        "en": "{message} (see --help)",
        "zh-TW": "{message}（請參考 --help）",
        "ja": "{message}（--help を参照してください）",
    },
    "cli.error.nothing_to_change": {
        "en": "nothing to change: name at least one field option. Allowed: the options that --help lists",
        "zh-TW": "沒有要變更的內容：請至少指定一個欄位選項。可用的選項請看 --help",
        "ja": "変更する内容がありません。項目のオプションを少なくとも一つ指定してください（--help で一覧できます）",
    },
    "cli.error.sides_required": {
        "en": "--local, --remote: both are required unless --all is given. "
        "Allowed: TLS/SASL/DIALBACK, e.g. required/optional/true",
        "zh-TW": "--local、--remote：除非指定 --all，否則兩者都必須指定。"
        "可用的值：TLS/SASL/DIALBACK，例如 required/optional/true",
        "ja": "--local と --remote：--all を付けない場合は両方とも必要です。"
        "指定できる値：TLS/SASL/DIALBACK（例：required/optional/true）",
    },
    "cli.error.all_with_sides": {
        "en": "--all: cannot be combined with --local or --remote. Allowed: either --all, or --local and --remote",
        "zh-TW": "--all：不能與 --local 或 --remote 同時使用。可用的組合：只用 --all，或同時用 --local 與 --remote",
        "ja": "--all：--local や --remote と一緒には使えません。"
        "--all だけ、または --local と --remote の両方を指定してください",
    },
    "cli.error.triple_part": {
        "en": "{field}: '{value}' is not allowed: its {part} part '{given}' is not one of {choices}. "
        "Allowed: TLS/SASL/DIALBACK, e.g. required/optional/true",
        "zh-TW": "{field}：不接受「{value}」：其中 {part} 的部分「{given}」不是 {choices} 之一。"
        "可用的值：TLS/SASL/DIALBACK，例如 required/optional/true",
        "ja": "{field}：「{value}」は指定できません。{part} の部分「{given}」が {choices} のどれでもありません。"
        "指定できる値：TLS/SASL/DIALBACK（例：required/optional/true）",
    },
    "cli.error.exists": {
        "en": "{field}: {domain} is already taken by partner {owner}. Allowed: a domain no partner uses yet",
        "zh-TW": "{field}：{domain} 已被協力夥伴 {owner} 使用。可用的值：尚未被任何協力夥伴使用的網域",
        "ja": "{field}：{domain} はすでにパートナー {owner} が使っています。"
        "指定できる値：どのパートナーもまだ使っていないドメイン",
    },
    "cli.error.unknown_partner": {
        "en": "domain: there is no partner {domain}. Allowed: a partner's domain (see fedgate partner get)",
        "zh-TW": "domain：沒有名為 {domain} 的協力夥伴。可用的值：現有協力夥伴的網域（請看 fedgate partner get）",
        "ja": "domain：{domain} というパートナーはありません。指定できる値：登録済みパートナーのドメイン"
        "（fedgate partner get で確認できます）",
    },
    "cli.error.schema_too_new": {
        "en": "db: the database has schema version {found}, newer than this fedgate knows. "
        "Allowed: schema version {known} or older (upgrade fedgate)",
        "zh-TW": "db：資料庫的結構版本是 {found}，比這個 fedgate 所認得的還新。"
        "可用的值：結構版本 {known} 或更舊（請升級 fedgate）",
        "ja": "db：データベースのスキーマバージョン {found} は、この fedgate が扱えるものより新しいです。"
        "指定できる値：スキーマバージョン {known} 以前（fedgate を更新してください）",
    },
    "cli.error.db": {
        "en": "--db: {path} {problem}; nothing was written. "
        "Allowed: a fedgate database, or a new file in a folder fedgate can write to",
        "zh-TW": "--db：{path} {problem}；未寫入任何內容。"
        "可用的值：fedgate 的資料庫，或位於 fedgate 可寫入之資料夾中的新檔案",
        "ja": "--db：{path} は{problem}。何も書き込んでいません。"
        "指定できる値：fedgate のデータベース、または fedgate が書き込めるフォルダー内の新しいファイル",
    },
    "db.problem.not_a_database": {
        "en": "is not a database (it is damaged, or some other kind of file)",
        "zh-TW": "不是資料庫（檔案已損壞，或是其他種類的檔案）",
        "ja": "データベースではありません（壊れているか、別の種類のファイルです）",
    },
    "db.problem.foreign": {
        "en": "is another program's SQLite database, not fedgate's",
        "zh-TW": "是其他程式的 SQLite 資料庫，不是 fedgate 的",
        "ja": "別のプログラムの SQLite データベースで、fedgate のものではありません",
    },
    "db.problem.no_directory": {
        "en": "cannot be created: its folder does not exist and cannot be made",
        "zh-TW": "無法建立：所在的資料夾不存在，也無法建立",
        "ja": "作成できません（置き場所のフォルダーが存在せず、作ることもできません）",
    },
    "db.problem.no_permission": {
        "en": "cannot be opened or created: permission denied",
        "zh-TW": "無法開啟或建立：權限不足",
        "ja": "開くことも作ることもできません（権限がありません）",
    },
    "db.problem.read_only": {
        "en": "cannot be written: the file or its folder is read-only",
        "zh-TW": "無法寫入：檔案或其所在資料夾為唯讀",
        "ja": "書き込めません（ファイルかフォルダーが読み取り専用です）",
    },
    "db.problem.busy": {
        "en": "stayed locked by another process for too long",
        "zh-TW": "被其他程序鎖定太久",
        "ja": "別のプロセスにロックされたまま時間切れになりました",
    },
    "db.problem.cannot_open": {
        "en": "cannot be opened (it is a folder, or a place SQLite cannot keep a file)",
        "zh-TW": "無法開啟（它是資料夾，或是 SQLite 無法存放檔案的位置）",
        "ja": "開けません（フォルダーであるか、SQLite がファイルを置けない場所です）",
    },
    "db.problem.io_error": {
        "en": "could not be read or written (a disk error, or the disk is full)",
        "zh-TW": "無法讀取或寫入（磁碟錯誤，或磁碟已滿）",
        "ja": "読み書きできませんでした（ディスクのエラーか、ディスクの空き不足です）",
    },
    "db.problem.in_memory": {
        "en": "is SQLite's name for a database in memory, which the gateway and the CLI could not share",
        "zh-TW": "是 SQLite 用來表示記憶體內資料庫的名稱，閘道與命令列工具無法共用這種資料庫",
        "ja": "SQLite でメモリー上のデータベースを表す名前で、ゲートウェイと CLI が共有できません",
    },
    "db.problem.no_wal": {
        "en": "cannot be used: this file system cannot keep SQLite's write-ahead log (WAL)",
        "zh-TW": "無法使用：這個檔案系統無法存放 SQLite 的預寫式日誌（WAL）",
        "ja": "使えません（このファイルシステムでは SQLite の先行書き込みログ（WAL）を扱えません）",
    },
    "cli.allowed.see_help": {
        "en": "see --help",
        "zh-TW": "請看 --help",
        "ja": "--help を参照してください",
    },
    # What is wrong with a value
    "problem.not_text": {"en": "not text", "zh-TW": "不是文字", "ja": "文字列ではありません"},
    "problem.not_list": {"en": "not a list", "zh-TW": "不是清單", "ja": "リストではありません"},
    "problem.empty": {"en": "empty", "zh-TW": "是空的", "ja": "空です"},
    "problem.space": {"en": "contains a space", "zh-TW": "含有空白", "ja": "空白が含まれています"},
    "problem.at_sign": {
        "en": "contains '@': give the domain only, not an address",
        "zh-TW": "含有「@」：請只填網域，不要填位址",
        "ja": "「@」が含まれています。アドレスではなくドメインだけを指定してください",
    },
    "problem.slash": {
        "en": "contains '/': give the domain only, not a JID with a resource",
        "zh-TW": "含有「/」：請只填網域，不要填帶資源的 JID",
        "ja": "「/」が含まれています。リソース付きの JID ではなくドメインだけを指定してください",
    },
    "problem.port": {
        "en": "contains a port: ports go in proxy_fqdn",
        "zh-TW": "含有連接埠：連接埠請設定在 proxy_fqdn",
        "ja": "ポートが含まれています。ポートは proxy_fqdn で指定します",
    },
    "problem.ipv6_needs_brackets": {
        "en": "an IPv6 address goes in brackets, such as [::1] or [::1]:5269",
        "zh-TW": "IPv6 位址必須放在方括號內，例如 [::1] 或 [::1]:5269",
        "ja": "IPv6 アドレスは [::1] や [::1]:5269 のように角かっこで囲みます",
    },
    "problem.too_many_colons": {
        "en": "more than one ':', but only the one before the port may appear; IPv6 addresses go in brackets",
        "zh-TW": "「:」超過一個，但只有連接埠前面的那一個可以出現；IPv6 位址請放在方括號內",
        "ja": "「:」が複数ありますが、使えるのはポートの前の一つだけです。IPv6 アドレスは角かっこで囲みます",
    },
    "problem.not_triple": {
        "en": "not three parts separated by '/'",
        "zh-TW": "不是以「/」分隔的三個部分",
        "ja": "「/」で区切った三つの部分になっていません",
    },
    "problem.empty_label": {
        "en": "has an empty label (two dots in a row, or a dot at the start)",
        "zh-TW": "有空的標籤（連續兩個點，或以點開頭）",
        "ja": "空のラベルがあります（ドットが連続しているか、先頭がドットです）",
    },
    "problem.bad_label": {
        "en": "a label is not allowed in a domain name (IDNA 2008): a character such as '_' or a symbol, "
        "a '-' at its start or end or as its 3rd and 4th characters, or an xn-- form that does not decode",
        "zh-TW": "有標籤不符合網域名稱的規則（IDNA 2008）：含有「_」或符號等字元、以「-」開頭或結尾、"
        "第 3 與第 4 個字元是「-」，或是無法解碼的 xn-- 形式",
        "ja": "ドメイン名（IDNA 2008）に使えないラベルがあります。「_」や記号などの文字、先頭・末尾または"
        "3・4 文字目の「-」、復号できない xn-- 形式のいずれかです",
    },
    "problem.label_too_long": {
        "en": "a label is longer than 63 characters",
        "zh-TW": "某個標籤超過 63 個字元",
        "ja": "63 文字を超えるラベルがあります",
    },
    "problem.too_long": {"en": "too long", "zh-TW": "太長", "ja": "長すぎます"},
    "problem.too_short": {"en": "too short", "zh-TW": "太短", "ja": "短すぎます"},
    "problem.bad_port": {
        "en": "the port is not a number from 1 to 65535",
        "zh-TW": "連接埠不是 1 到 65535 之間的數字",
        "ja": "ポートが 1〜65535 の数ではありません",
    },
    "problem.bad_host": {
        "en": "not a host name or IP address",
        "zh-TW": "不是主機名稱或 IP 位址",
        "ja": "ホスト名でも IP アドレスでもありません",
    },
    "problem.not_integer": {"en": "not a whole number", "zh-TW": "不是整數", "ja": "整数ではありません"},
    "problem.too_small": {"en": "less than 1", "zh-TW": "小於 1", "ja": "1 未満です"},
    "problem.not_allowed": {"en": "not one of the choices", "zh-TW": "不在可選的範圍內", "ja": "選択肢にありません"},
    "problem.control_character": {
        "en": "contains a control character or line break",
        "zh-TW": "含有控制字元或換行",
        "ja": "制御文字か改行が含まれています",
    },
    "problem.not_found": {"en": "does not exist", "zh-TW": "不存在", "ja": "存在しません"},
    "problem.is_directory": {"en": "is a folder", "zh-TW": "是資料夾", "ja": "フォルダーです"},
    "problem.is_file": {
        "en": "is a file, not a folder",
        "zh-TW": "是檔案而不是資料夾",
        "ja": "フォルダーではなくファイルです",
    },
    "problem.no_access": {
        "en": "cannot be read or written here",
        "zh-TW": "在這裡無法讀取或寫入",
        "ja": "ここでは読み書きできません",
    },
    "problem.not_number": {"en": "not a number", "zh-TW": "不是數字", "ja": "数ではありません"},
    "problem.out_of_range": {"en": "out of range", "zh-TW": "超出範圍", "ja": "範囲外です"},
    "problem.above_connection_limit": {
        "en": "more than connection_limit, which is {connection_limit}",
        "zh-TW": "大於 connection_limit（目前為 {connection_limit}）",
        "ja": "connection_limit（現在 {connection_limit}）より大きい値です",
    },
    "problem.unknown_field": {"en": "no such field", "zh-TW": "沒有這個欄位", "ja": "そのような項目はありません"},
    "problem.same_as_domain": {
        "en": "the partner's own domain cannot also be an additional domain",
        "zh-TW": "協力夥伴自己的網域不能同時是附加網域",
        "ja": "パートナー自身のドメインを追加ドメインにすることはできません",
    },
    "problem.not_listed": {
        "en": "not one of this partner's additional domains",
        "zh-TW": "不是這個協力夥伴的附加網域",
        "ja": "このパートナーの追加ドメインではありません",
    },
    # What a field allows
    "allowed.domain": {
        "en": "a domain name such as example.com or bücher.example: labels of letters, digits and '-', "
        "no spaces, '@', '/' or port, at most 253 characters",
        "zh-TW": "網域名稱，例如 example.com 或 bücher.example：標籤由字母、數字與「-」組成，"
        "不可有空白、「@」、「/」或連接埠，最多 253 個字元",
        "ja": "example.com や bücher.example のようなドメイン名。ラベルは英字・数字・「-」で構成し、"
        "空白・「@」・「/」・ポートは含めず、全体で 253 文字以内",
    },
    "allowed.proxy_fqdn": {
        "en": "HOST or HOST:PORT, where HOST is a domain, an IPv4 address or an [IPv6] address and PORT is 1-65535; "
        "empty for none",
        "zh-TW": "HOST 或 HOST:PORT，HOST 為網域、IPv4 位址或 [IPv6] 位址，PORT 為 1 到 65535；留空表示不使用",
        "ja": "HOST または HOST:PORT（HOST はドメイン・IPv4 アドレス・[IPv6] アドレス、PORT は 1〜65535）。"
        "使わない場合は空にします",
    },
    "allowed.positive_int": {"en": "a whole number, 1 or more", "zh-TW": "1 以上的整數", "ja": "1 以上の整数"},
    "allowed.optional_positive_int": {
        "en": "a whole number, 1 or more, or 'default' for the gateway's partner_connection_limit",
        "zh-TW": "1 以上的整數，或以「default」沿用閘道的 partner_connection_limit",
        "ja": "1 以上の整数、またはゲートウェイの partner_connection_limit に従う「default」",
    },
    "allowed.partner_connection_limit": {
        "en": "a whole number from 1 up to connection_limit (set both in one command to move them together)",
        "zh-TW": "1 到 connection_limit 之間的整數（要一起調整兩者，請在同一個指令中同時設定）",
        "ja": "1 から connection_limit までの整数（両方を動かすときは一つのコマンドで同時に指定します）",
    },
    "allowed.description": {
        "en": "one line of text, at most 1024 characters",
        "zh-TW": "單行文字，最多 1024 個字元",
        "ja": "1 行のテキスト（1024 文字以内）",
    },
    "allowed.dialback_passphrase": {
        "en": "at least 16 printable characters without spaces",
        "zh-TW": "至少 16 個可列印字元，不含空白",
        "ja": "空白を含まない 16 文字以上の表示可能な文字",
    },
    "allowed.unlisted_domains": {
        "en": "refuse, or TLS/SASL/DIALBACK settings with a usable method, e.g. optional/optional/true",
        "zh-TW": "refuse，或至少有一種可用驗證方式的 TLS/SASL/DIALBACK 設定，例如 optional/optional/true",
        "ja": "refuse、または使える方式が残る TLS/SASL/DIALBACK の設定（例：optional/optional/true）",
    },
    "allowed.number": {"en": "a number", "zh-TW": "數字", "ja": "数"},
    "allowed.number_range": {
        "en": "a number from {low} to {high}",
        "zh-TW": "{low} 到 {high} 之間的數字",
        "ja": "{low}〜{high} の数",
    },
    "allowed.path.file": {
        "en": "a file path (not a folder)",
        "zh-TW": "檔案路徑（不可是資料夾）",
        "ja": "ファイルのパス（フォルダーは不可）",
    },
    "allowed.path.file_existing": {
        "en": "an existing file (not a folder)",
        "zh-TW": "已存在的檔案（不可是資料夾）",
        "ja": "既存のファイル（フォルダーは不可）",
    },
    "allowed.path.dir": {
        "en": "a folder path (not a file)",
        "zh-TW": "資料夾路徑（不可是檔案）",
        "ja": "フォルダーのパス（ファイルは不可）",
    },
    "allowed.path.dir_existing": {
        "en": "an existing folder",
        "zh-TW": "已存在的資料夾",
        "ja": "既存のフォルダー",
    },
    "allowed.path.any": {
        "en": "a file or folder path",
        "zh-TW": "檔案或資料夾路徑",
        "ja": "ファイルかフォルダーのパス",
    },
    "allowed.path.any_existing": {
        "en": "an existing file or folder",
        "zh-TW": "已存在的檔案或資料夾",
        "ja": "既存のファイルかフォルダー",
    },
    "allowed.settings_triple": {
        "en": "TLS/SASL/DIALBACK, e.g. required/optional/true",
        "zh-TW": "TLS/SASL/DIALBACK，例如 required/optional/true",
        "ja": "TLS/SASL/DIALBACK（例：required/optional/true）",
    },
    "allowed.settings": {
        "en": "TLS/SASL/DIALBACK settings that leave at least one method (see fedgate policy matrix)",
        "zh-TW": "至少留下一種驗證方式的 TLS/SASL/DIALBACK 設定（請看 fedgate policy matrix）",
        "ja": "少なくとも一つの方式が残る TLS/SASL/DIALBACK の設定（fedgate policy matrix で確認できます）",
    },
    # Confirmations
    "cli.partner.added": {
        "en": "Partner {domain} added.",
        "zh-TW": "已新增協力夥伴 {domain}。",
        "ja": "パートナー {domain} を追加しました。",
    },
    "cli.partner.updated": {
        "en": "Partner {domain} updated.",
        "zh-TW": "已更新協力夥伴 {domain}。",
        "ja": "パートナー {domain} を更新しました。",
    },
    "cli.partner.removed": {
        "en": "Partner {domain} removed.",
        "zh-TW": "已移除協力夥伴 {domain}。",
        "ja": "パートナー {domain} を削除しました。",
    },
    "cli.partner.none": {
        "en": "No partners match.",
        "zh-TW": "沒有符合的協力夥伴。",
        "ja": "該当するパートナーはありません。",
    },
    "cli.gateway.updated": {
        "en": "Gateway settings updated.",
        "zh-TW": "已更新閘道設定。",
        "ja": "ゲートウェイの設定を更新しました。",
    },
    "cli.passphrase.hidden": {
        "en": "(set; shown with --show-secrets)",
        "zh-TW": "（已設定；加上 --show-secrets 才會顯示）",
        "ja": "（設定済み。--show-secrets で表示します）",
    },
    "cli.passphrase.unset": {
        "en": "(not yet generated; made on first use)",
        "zh-TW": "（尚未產生；第一次使用時自動建立）",
        "ja": "（未生成。初めて使うときに作られます）",
    },
    # Values
    "cli.value.yes": {"en": "yes", "zh-TW": "是", "ja": "はい"},
    "cli.value.no": {"en": "no", "zh-TW": "否", "ja": "いいえ"},
    "cli.value.default": {"en": "default", "zh-TW": "預設", "ja": "既定"},
    "cli.value.refuse": {"en": "refuse", "zh-TW": "拒絕", "ja": "拒否"},
    # Table headings
    "cli.heading.domain": {"en": "Domain", "zh-TW": "網域", "ja": "ドメイン"},
    "cli.heading.additional_domains": {"en": "Additional domains", "zh-TW": "附加網域", "ja": "追加ドメイン"},
    "cli.heading.tls": {"en": "TLS", "zh-TW": "TLS", "ja": "TLS"},
    "cli.heading.sasl": {"en": "SASL", "zh-TW": "SASL", "ja": "SASL"},
    "cli.heading.dialback": {"en": "Dialback", "zh-TW": "回撥驗證", "ja": "ダイヤルバック"},
    "cli.heading.partner_type": {"en": "Type", "zh-TW": "類型", "ja": "種別"},
    "cli.heading.proxy_fqdn": {"en": "Proxy", "zh-TW": "代理主機", "ja": "プロキシ"},
    "cli.heading.keepalive": {"en": "Keepalive", "zh-TW": "保持連線", "ja": "キープアライブ"},
    "cli.heading.connection_limit": {"en": "Connection limit", "zh-TW": "連線上限", "ja": "接続数上限"},
    "cli.heading.description": {"en": "Description", "zh-TW": "說明", "ja": "説明"},
    "cli.heading.valid": {"en": "Valid", "zh-TW": "有效", "ja": "有効"},
    "cli.heading.methods": {"en": "Methods", "zh-TW": "驗證方式", "ja": "認証方式"},
    "cli.heading.method": {"en": "Method", "zh-TW": "驗證方式", "ja": "認証方式"},
    "cli.heading.notes": {"en": "Notes", "zh-TW": "附註", "ja": "注記"},
    # Gateway fields
    "cli.gateway.connection_limit": {
        "en": "Connection limit",
        "zh-TW": "連線總數上限",
        "ja": "接続数の上限（全体）",
    },
    "cli.gateway.partner_connection_limit": {
        "en": "Connection limit per partner",
        "zh-TW": "每個協力夥伴的連線上限",
        "ja": "パートナーごとの接続数上限",
    },
    "cli.gateway.dialback_passphrase": {
        "en": "Dialback passphrase",
        "zh-TW": "回撥驗證通關密語",
        "ja": "ダイヤルバックのパスフレーズ",
    },
    "cli.gateway.keepalive_interval": {
        "en": "Keepalive interval (s)",
        "zh-TW": "保持連線間隔（秒）",
        "ja": "キープアライブ間隔（秒）",
    },
    "cli.gateway.stream_establishment_timeout": {
        "en": "Stream establishment timeout (s)",
        "zh-TW": "串流建立逾時（秒）",
        "ja": "ストリーム確立のタイムアウト（秒）",
    },
    "cli.gateway.stream_inactivity_timeout": {
        "en": "Stream inactivity timeout (s)",
        "zh-TW": "串流閒置逾時（秒）",
        "ja": "ストリーム無通信のタイムアウト（秒）",
    },
    "cli.gateway.subscription_refresh_interval": {
        "en": "Subscription refresh interval (s)",
        "zh-TW": "訂閱更新間隔（秒）",
        "ja": "購読の更新間隔（秒）",
    },
    "cli.gateway.log_message_bodies": {
        "en": "Log message bodies",
        "zh-TW": "記錄訊息內容",
        "ja": "メッセージ本文をログに残す",
    },
    "cli.gateway.max_stanza_size": {
        "en": "Largest stanza (bytes)",
        "zh-TW": "節（stanza）大小上限（位元組）",
        "ja": "スタンザの最大サイズ（バイト）",
    },
    "cli.gateway.unlisted_domains": {
        "en": "Domains not listed as partners",
        "zh-TW": "未列為協力夥伴的網域",
        "ja": "パートナーとして登録されていないドメイン",
    },
}

"""Texts for the ops layer: ``fedgate demo``, ``fedgate probe`` and ``fedgate init``."""

MESSAGES: dict[str, dict[str, str]] = {
    # --- fedgate demo -----------------------------------------------------------------------------------------
    "demo.title": {
        "en": "Two fedgate gateways on 127.0.0.1 ({a}, {b}), a component behind each: "
        "a message and its reply for each method.",
        "zh-TW": "兩個 fedgate 閘道在 127.0.0.1 上（{a}、{b}），各接一個元件：每種方式各送一則訊息並收到回覆。",
        "ja": "127.0.0.1 上の fedgate ゲートウェイ 2 台（{a}、{b}）と、それぞれの背後のコンポーネント："
        "方式ごとにメッセージを送り、返信を受け取ります。",
    },
    "demo.col.method": {"en": "method", "zh-TW": "方式", "ja": "方式"},
    "demo.col.settings": {"en": "settings (both sides)", "zh-TW": "設定（雙方）", "ja": "設定（双方）"},
    "demo.col.negotiated": {"en": "negotiated", "zh-TW": "協商結果", "ja": "ネゴシエーション結果"},
    "demo.col.tls": {"en": "TLS", "zh-TW": "TLS 版本", "ja": "TLS バージョン"},
    "demo.col.round_trip": {"en": "round trip", "zh-TW": "往返時間", "ja": "往復時間"},
    "demo.col.result": {"en": "result", "zh-TW": "結果", "ja": "結果"},
    "demo.result.ok": {"en": "ok", "zh-TW": "成功", "ja": "成功"},
    "demo.result.failed": {"en": "failed: {reason}", "zh-TW": "失敗：{reason}", "ja": "失敗：{reason}"},
    "demo.ms": {"en": "{ms} ms", "zh-TW": "{ms} 毫秒", "ja": "{ms} ミリ秒"},
    "demo.ok_detail": {
        "en": "message and reply delivered over {method}",
        "zh-TW": "訊息與回覆皆經由{method}送達",
        "ja": "メッセージと返信が{method}で届きました",
    },
    "demo.unexpected": {
        "en": "unexpected stanza arrived ({what})",
        "zh-TW": "收到意料之外的節（{what}）",
        "ja": "予期しないスタンザを受信しました（{what}）",
    },
    "demo.bounced": {
        "en": "the message came back with the error {condition}",
        "zh-TW": "訊息被退回，錯誤為 {condition}",
        "ja": "メッセージがエラー {condition} で戻ってきました",
    },
    "demo.timeout": {
        "en": "no answer within {seconds} s",
        "zh-TW": "{seconds} 秒內沒有回應",
        "ja": "{seconds} 秒以内に応答がありません",
    },
    "demo.wrong_method": {
        "en": "delivered, but over {got} instead of {expected}",
        "zh-TW": "已送達，但使用的是 {got} 而不是 {expected}",
        "ja": "届きましたが、{expected} ではなく {got} が使われました",
    },
    "demo.result.refused": {"en": "refused: {reason}", "zh-TW": "已拒絕：{reason}", "ja": "拒否：{reason}"},
    "demo.refused_by_store": {
        "en": "the partner store refused the change of {field}; the partner kept its settings",
        "zh-TW": "夥伴資料庫拒絕變更 {field}，夥伴維持原設定",
        "ja": "パートナーストアが {field} の変更を拒否しました。パートナーの設定は変わっていません",
    },
    "demo.not_refused": {
        "en": "the store accepted settings it should have refused",
        "zh-TW": "資料庫接受了應該拒絕的設定",
        "ja": "ストアが拒否すべき設定を受け付けてしまいました",
    },
    "demo.summary_ok": {
        "en": "All three methods work; the refused combination was refused.",
        "zh-TW": "三種方式皆可運作；不可用的組合也如預期被拒絕。",
        "ja": "3 つの方式すべてが動作し、使えない組み合わせは拒否されました。",
    },
    "demo.summary_failed": {
        "en": "Not everything worked: see the result column.",
        "zh-TW": "並非全部成功：請看結果欄。",
        "ja": "一部が失敗しました。結果の列を確認してください。",
    },
    # --- fedgate probe ----------------------------------------------------------------------------------------
    "probe.heading": {
        "en": "Probe of {domain} (as {from_})",
        "zh-TW": "探測 {domain}（以 {from_} 的身分）",
        "ja": "{domain} の調査（{from_} として）",
    },
    "probe.label.targets": {"en": "targets", "zh-TW": "連線目標", "ja": "接続先"},
    "probe.label.connected": {"en": "connected to", "zh-TW": "已連線至", "ja": "接続先アドレス"},
    "probe.label.stream_error": {"en": "stream error", "zh-TW": "串流錯誤", "ja": "ストリームエラー"},
    "probe.label.starttls": {"en": "STARTTLS", "zh-TW": "STARTTLS 提供", "ja": "STARTTLS の提供"},
    "probe.label.dialback_before": {
        "en": "dialback before TLS", "zh-TW": "TLS 前的 dialback", "ja": "TLS 前の dialback",
    },
    "probe.label.dialback_after": {
        "en": "dialback after TLS", "zh-TW": "TLS 後的 dialback", "ja": "TLS 後の dialback",
    },
    "probe.label.tls": {"en": "TLS session", "zh-TW": "TLS 連線", "ja": "TLS セッション"},
    "probe.label.certificate": {"en": "certificate", "zh-TW": "憑證", "ja": "証明書"},
    "probe.label.sasl": {"en": "SASL mechanisms", "zh-TW": "SASL 機制", "ja": "SASL メカニズム"},
    "probe.label.local": {"en": "our settings", "zh-TW": "本端設定", "ja": "こちらの設定"},
    "probe.label.remote": {"en": "partner (as observed)", "zh-TW": "對方（觀察所得）", "ja": "相手側（観測結果）"},
    "probe.label.method": {"en": "method", "zh-TW": "驗證方式", "ja": "認証方式"},
    "probe.label.reasons": {"en": "why", "zh-TW": "原因", "ja": "理由"},
    "probe.not_offered": {"en": "not offered", "zh-TW": "未提供", "ja": "提供なし"},
    "probe.offered": {"en": "offered", "zh-TW": "有提供", "ja": "提供あり"},
    "probe.offered_required": {
        "en": "offered, required", "zh-TW": "有提供，且為必要", "ja": "提供あり（必須）",
    },
    "probe.none": {"en": "none", "zh-TW": "無", "ja": "なし"},
    "probe.not_reached": {"en": "not reached", "zh-TW": "未達此步驟", "ja": "未到達"},
    "probe.cert_entry": {
        "en": "[{index}] {subject}, issued by {issuer}, expires {expires}",
        "zh-TW": "[{index}] {subject}，簽發者 {issuer}，到期日 {expires}",
        "ja": "[{index}] {subject}、発行者 {issuer}、有効期限 {expires}",
    },
    "probe.cert_valid": {
        "en": "chain valid against the trust anchors",
        "zh-TW": "憑證鏈可由信任錨驗證",
        "ja": "トラストアンカーで検証できるチェーン",
    },
    "probe.cert_invalid": {
        "en": "chain NOT valid: {error}", "zh-TW": "憑證鏈無效：{error}", "ja": "チェーンが無効：{error}",
    },
    "probe.cert_matches": {
        "en": "names match {domain}", "zh-TW": "名稱符合 {domain}", "ja": "名前が {domain} と一致",
    },
    "probe.cert_mismatch": {
        "en": "names do NOT match {domain}", "zh-TW": "名稱不符合 {domain}", "ja": "名前が {domain} と一致しません",
    },
    "probe.no_method": {"en": "none", "zh-TW": "無可用方式", "ja": "使える方式なし"},
    "probe.source.partner": {
        "en": "{settings} (partner {domain} in the store)",
        "zh-TW": "{settings}（資料庫中的夥伴 {domain}）",
        "ja": "{settings}（ストアのパートナー {domain}）",
    },
    "probe.source.unlisted": {
        "en": "{settings} (not a partner; the gateway's unlisted_domains setting)",
        "zh-TW": "{settings}（不是夥伴；採用閘道的 unlisted_domains 設定）",
        "ja": "{settings}（パートナーではありません。ゲートウェイの unlisted_domains 設定）",
    },
    "probe.source.default": {
        "en": "{settings} (not a partner: defaults of a new partner)",
        "zh-TW": "{settings}（不是夥伴：採用新夥伴的預設值）",
        "ja": "{settings}（パートナーではありません：新規パートナーの既定値）",
    },
    "probe.reason.not_a_partner": {
        "en": "{domain} is not a partner: the gateway would refuse it until it is added "
        "(the method shown is for a new partner with default settings)",
        "zh-TW": "{domain} 不是夥伴：加入之前閘道會拒絕它（顯示的方式是以新夥伴預設值計算）",
        "ja": "{domain} はパートナーではありません。追加するまでゲートウェイは拒否します"
        "（表示した方式は既定値の新規パートナーの場合）",
    },
    "probe.reason.unlisted": {
        "en": "{domain} is not a partner: the gateway accepts it with its unlisted_domains settings",
        "zh-TW": "{domain} 不是夥伴：閘道依 unlisted_domains 設定接受它",
        "ja": "{domain} はパートナーではありません。ゲートウェイは unlisted_domains の設定で受け入れます",
    },
    "probe.reason.sasl_unobserved": {
        "en": "SASL EXTERNAL is only offered to a certificate valid for the initiating domain; the probe "
        "presented none, so the partner's SASL setting is assumed to be {sasl}",
        "zh-TW": "SASL EXTERNAL 只會提供給憑證對發起網域有效的一方；"
        "探測時未出示憑證，因此假設對方的 SASL 設定為 {sasl}",
        "ja": "SASL EXTERNAL は発信ドメインに有効な証明書にだけ提供されます。調査では証明書を提示していないため、"
        "相手の SASL 設定は {sasl} と仮定しました",
    },
    "probe.reason.connect_failed": {
        "en": "could not connect: {error}",
        "zh-TW": "無法連線：{error}",
        "ja": "接続できません：{error}",
    },
    "probe.reason.stream_error": {
        "en": "the partner closed the stream with {condition}{text}",
        "zh-TW": "對方以 {condition}{text} 關閉了串流",
        "ja": "相手が {condition}{text} でストリームを閉じました",
    },
    "probe.reason.tls_failed": {
        "en": "the TLS handshake failed: {error}",
        "zh-TW": "TLS 交握失敗：{error}",
        "ja": "TLS ハンドシェイクに失敗しました：{error}",
    },
    "probe.reason.protocol": {
        "en": "unexpected answer from the partner: {error}",
        "zh-TW": "對方的回應不符預期：{error}",
        "ja": "相手から予期しない応答がありました：{error}",
    },
    "probe.error.connect": {
        "en": "--connect: '{value}' is not HOST:PORT",
        "zh-TW": "--connect：「{value}」不是 HOST:PORT 格式",
        "ja": "--connect：「{value}」は HOST:PORT の形式ではありません",
    },
    # --- fedgate init -----------------------------------------------------------------------------------------
    "init.exists": {
        "en": "{path}: already exists; nothing was written. Allowed: --force to overwrite",
        "zh-TW": "{path}：已存在，未寫入任何檔案。如要覆寫請加上 --force",
        "ja": "{path}：すでに存在するため何も書き込んでいません。上書きするには --force を付けてください",
    },
    "init.wrote": {"en": "wrote {path}", "zh-TW": "已寫入 {path}", "ja": "{path} を書き込みました"},
    "init.dev_ca": {
        "en": "test CA {path} (trust it only on this machine)",
        "zh-TW": "測試用 CA {path}（只在這台機器上信任）",
        "ja": "テスト用 CA {path}（このマシンでのみ信頼してください）",
    },
    "init.next": {
        "en": "next: fedgate serve --config {path}",
        "zh-TW": "下一步：fedgate serve --config {path}",
        "ja": "次の手順：fedgate serve --config {path}",
    },
}

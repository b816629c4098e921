"""Texts for `fedgate serve` and `fedgate status`."""

MESSAGES: dict[str, dict[str, str]] = {
    "ops.config_error": {
        "en": "configuration error in {key}: {problem}",
        "zh-TW": "設定錯誤（{key}）：{problem}",
        "ja": "設定エラー（{key}）：{problem}",
    },
    "ops.reloaded": {
        "en": "reloaded certificates and settings from {path}",
        "zh-TW": "已從 {path} 重新載入憑證與設定",
        "ja": "{path} から証明書と設定を再読み込みしました",
    },
    "ops.serving": {
        "en": "serving {domains} on {addresses} (event loop: {loop})",
        "zh-TW": "正在為 {domains} 提供服務，位址：{addresses}（事件迴圈：{loop}）",
        "ja": "{domains} を {addresses} で提供しています（イベントループ：{loop}）",
    },
    "ops.stopping": {
        "en": "stopping: closing streams (what partners and components still send is routed) and bouncing what "
              "cannot be sent",
        "zh-TW": "正在停止：關閉串流（夥伴與元件仍在傳送的節照常轉送），並退回無法送出的節",
        "ja": "停止中：ストリームを閉じ（パートナーとコンポーネントがまだ送ってくるスタンザは転送します）、"
              "送れないスタンザを差し戻しています",
    },
    "ops.no_admin": {
        "en": "no admin endpoint is configured",
        "zh-TW": "未設定管理端點",
        "ja": "管理エンドポイントが設定されていません",
    },
    "ops.not_running": {
        "en": "no gateway answers at {address}: {problem}",
        "zh-TW": "{address} 沒有閘道回應：{problem}",
        "ja": "{address} で応答するゲートウェイがありません：{problem}",
    },
    "ops.no_streams": {"en": "no live streams", "zh-TW": "目前沒有串流", "ja": "稼働中のストリームはありません"},
    "ops.components": {
        "en": "components: {names}",
        "zh-TW": "元件：{names}",
        "ja": "コンポーネント：{names}",
    },
    "ops.col.partner": {"en": "partner", "zh-TW": "夥伴", "ja": "パートナー"},
    "ops.col.direction": {"en": "direction", "zh-TW": "方向", "ja": "方向"},
    "ops.col.method": {"en": "method", "zh-TW": "方式", "ja": "方式"},
    "ops.col.tls": {"en": "TLS", "zh-TW": "TLS 版本", "ja": "TLS バージョン"},
    "ops.col.certificate": {"en": "certificate", "zh-TW": "憑證", "ja": "証明書"},
    "ops.col.age": {"en": "age", "zh-TW": "存續時間", "ja": "経過時間"},
    "ops.col.stanzas_in": {"en": "in", "zh-TW": "收到", "ja": "受信"},
    "ops.col.stanzas_out": {"en": "out", "zh-TW": "送出", "ja": "送信"},
    "ops.col.queue": {"en": "queued", "zh-TW": "排隊中", "ja": "待機中"},
    # --- problems in fedgate.toml (the key is named by ops.config_error) ------------------------------------
    "ops.config.bad_certificate": {
        "en": "{path} is not a usable PEM certificate chain ({error})",
        "zh-TW": "{path} 不是可用的 PEM 憑證鏈（{error}）",
        "ja": "{path} は使用できる PEM 証明書チェーンではありません（{error}）",
    },
    "ops.config.bad_key": {
        "en": "{path} is not a usable PEM private key ({error})",
        "zh-TW": "{path} 不是可用的 PEM 私密金鑰（{error}）",
        "ja": "{path} は使用できる PEM 秘密鍵ではありません（{error}）",
    },
    "ops.config.key_mismatch": {
        "en": "{path} is not the private key of the certificate {certificate}",
        "zh-TW": "{path} 不是憑證 {certificate} 的私密金鑰",
        "ja": "{path} は証明書 {certificate} の秘密鍵ではありません",
    },
    "ops.config.bad_cafile": {
        "en": "{path} holds no usable PEM CA certificate ({error})",
        "zh-TW": "{path} 中沒有可用的 PEM CA 憑證（{error}）",
        "ja": "{path} に使用できる PEM CA 証明書がありません（{error}）",
    },
    "ops.config.no_uvloop": {
        "en": "uvloop is not installed (pip install 'fedgate[fast]'), or use \"auto\" or \"asyncio\"",
        "zh-TW": "尚未安裝 uvloop（pip install 'fedgate[fast]'），或改用 \"auto\" 或 \"asyncio\"",
        "ja": ("uvloop がインストールされていません（pip install 'fedgate[fast]'）。"
               "\"auto\" か \"asyncio\" を指定してください"),
    },
    "ops.config.same_address": {
        "en": "the same address as {other}; choose another",
        "zh-TW": "與 {other} 的位址相同，請換一個",
        "ja": "{other} と同じアドレスです。別のアドレスを指定してください",
    },
    "ops.config.token_missing": {
        "en": "{path} does not exist or is empty: start the gateway (fedgate serve) first, it writes the token",
        "zh-TW": "{path} 不存在或是空的：請先啟動閘道（fedgate serve），它會寫入權杖",
        "ja": "{path} が存在しないか空です。先にゲートウェイ（fedgate serve）を起動してください"
        "（トークンはそこで作成されます）",
    },
    "ops.config.token_unreadable": {
        "en": "cannot read {path}: {error}",
        "zh-TW": "無法讀取 {path}：{error}",
        "ja": "{path} を読み取れません：{error}",
    },
    # --- SIGHUP --------------------------------------------------------------------------------------------
    "ops.reload_failed": {
        "en": "reload refused, still running with the previous configuration: {key}: {problem}",
        "zh-TW": "拒絕重新載入，繼續使用先前的設定：{key}：{problem}",
        "ja": "再読み込みを拒否しました。以前の設定のまま動作しています：{key}：{problem}",
    },
    "ops.restart_needed": {
        "en": "{key} changed in {path}: it takes effect only after a restart",
        "zh-TW": "{path} 中的 {key} 已變更：需重新啟動才會生效",
        "ja": "{path} の {key} が変更されました。再起動するまで反映されません",
    },
}

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
        "en": "serving {domains} on {addresses}",
        "zh-TW": "正在為 {domains} 提供服務，位址：{addresses}",
        "ja": "{domains} を {addresses} で提供しています",
    },
    "ops.stopping": {
        "en": "stopping: bouncing queued stanzas and closing streams",
        "zh-TW": "正在停止：退回佇列中的節並關閉串流",
        "ja": "停止中：キューのスタンザを差し戻し、ストリームを閉じています",
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
}

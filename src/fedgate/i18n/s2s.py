"""Texts for the S2S engine's administrator log lines."""

MESSAGES: dict[str, dict[str, str]] = {
    "s2s.authenticated": {
        "en": "stream with {partner} ({direction}) authenticated by {method}",
        "zh-TW": "與 {partner} 的串流（{direction}）已透過 {method} 完成驗證",
        "ja": "{partner} とのストリーム（{direction}）を {method} で認証しました",
    },
    "s2s.negotiation_failed": {
        "en": "negotiation with {partner} ({direction}) failed: {reasons}",
        "zh-TW": "與 {partner} 的交涉（{direction}）失敗：{reasons}",
        "ja": "{partner} との交渉（{direction}）に失敗しました：{reasons}",
    },
    "s2s.refused": {
        "en": "stream from {partner} refused ({condition}): {text}",
        "zh-TW": "已拒絕來自 {partner} 的串流（{condition}）：{text}",
        "ja": "{partner} からのストリームを拒否しました（{condition}）：{text}",
    },
    "s2s.closed_by_policy_change": {
        "en": "closing the stream with {partner}: its settings no longer allow {method}",
        "zh-TW": "正在關閉與 {partner} 的串流：其設定已不再允許 {method}",
        "ja": "{partner} とのストリームを閉じます：設定が {method} を許可しなくなりました",
    },
    "component.connected": {
        "en": "component {domain} connected",
        "zh-TW": "元件 {domain} 已連線",
        "ja": "コンポーネント {domain} が接続しました",
    },
}

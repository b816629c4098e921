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
    "s2s.outbound_failed": {
        "en": "could not establish a stream to {partner}: {reason}",
        "zh-TW": "無法建立到 {partner} 的串流：{reason}",
        "ja": "{partner} へのストリームを確立できませんでした：{reason}",
    },
    "s2s.reason.establishment_timeout": {
        "en": "not authenticated within the stream establishment time-out ({seconds} s)",
        "zh-TW": "未在串流建立逾時（{seconds} 秒）內完成驗證",
        "ja": "ストリーム確立のタイムアウト（{seconds} 秒）以内に認証されませんでした",
    },
    "s2s.reason.resolution_failed": {
        "en": "its address could not be resolved ({error})",
        "zh-TW": "無法解析其位址（{error}）",
        "ja": "アドレスを解決できませんでした（{error}）",
    },
    "s2s.reason.connect_failed": {
        "en": "the connection failed ({error})",
        "zh-TW": "連線失敗（{error}）",
        "ja": "接続に失敗しました（{error}）",
    },
    "s2s.reason.tls_failed": {
        "en": "the TLS handshake failed ({error})",
        "zh-TW": "TLS 交握失敗（{error}）",
        "ja": "TLS ハンドシェイクに失敗しました（{error}）",
    },
    "s2s.reason.connection_limit": {
        "en": "the gateway's connection limit ({limit}) is reached",
        "zh-TW": "已達閘道的連線數上限（{limit}）",
        "ja": "ゲートウェイの接続数の上限（{limit}）に達しています",
    },
    "s2s.reason.dialback_error": {
        "en": "the peer returned dialback error {condition}",
        "zh-TW": "對方回傳了回撥（dialback）錯誤 {condition}",
        "ja": "相手がダイヤルバックのエラー {condition} を返しました",
    },
    "s2s.reason.dialback_invalid": {
        "en": "the peer found our dialback key invalid",
        "zh-TW": "對方判定我們的回撥（dialback）金鑰無效",
        "ja": "相手が当方のダイヤルバック鍵を無効と判定しました",
    },
    "s2s.reason.closed_early": {
        "en": "the stream ended before authentication",
        "zh-TW": "串流在完成驗證前即已結束",
        "ja": "認証が終わる前にストリームが終了しました",
    },
    "s2s.reason.no_local_certificate": {
        "en": "{domain} has no certificate, which rules out every method over TLS",
        "zh-TW": "{domain} 沒有憑證，因此排除了所有經由 TLS 的方法",
        "ja": "{domain} に証明書がないため、TLS を使う方法はどれも使えません",
    },
    "s2s.outbound_idle": {
        "en": "closing the idle stream to {partner} (no stanza either way for {seconds} s)",
        "zh-TW": "正在關閉到 {partner} 的閒置串流（雙向 {seconds} 秒沒有任何節（stanza））",
        "ja": "{partner} へのアイドル状態のストリームを閉じます（{seconds} 秒間どちらの方向にもスタンザなし）",
    },
    "component.connected": {
        "en": "component {domain} connected",
        "zh-TW": "元件 {domain} 已連線",
        "ja": "コンポーネント {domain} が接続しました",
    },
}

"""Texts the router puts in the <text/> of the errors it bounces."""

MESSAGES: dict[str, dict[str, str]] = {
    "router.to_missing": {
        "en": "The stanza has no 'to' address.",
        "zh-TW": "此節（stanza）沒有 'to' 位址。",
        "ja": "スタンザに 'to' アドレスがありません。",
    },
    "router.to_malformed": {
        "en": "The 'to' address {to} is not a valid XMPP address.",
        "zh-TW": "'to' 位址 {to} 不是有效的 XMPP 位址。",
        "ja": "'to' アドレス {to} は有効な XMPP アドレスではありません。",
    },
    "router.component_unavailable": {
        "en": "The service {domain} is not connected to the gateway at the moment.",
        "zh-TW": "服務 {domain} 目前未連線到閘道。",
        "ja": "サービス {domain} は現在ゲートウェイに接続されていません。",
    },
    "router.not_a_partner": {
        "en": "{domain} is not a federated partner of this gateway.",
        "zh-TW": "{domain} 不是此閘道的聯盟夥伴。",
        "ja": "{domain} はこのゲートウェイのフェデレーションパートナーではありません。",
    },
    "router.sender_not_local": {
        "en": "The sender's domain {domain} is not served by this gateway.",
        "zh-TW": "寄件者的網域 {domain} 不由此閘道提供服務。",
        "ja": "送信者のドメイン {domain} はこのゲートウェイが提供するものではありません。",
    },
    "router.no_relay": {
        "en": "This gateway does not relay stanzas between federated domains; {domain} is not served here.",
        "zh-TW": "此閘道不在聯盟網域之間轉送節（stanza）；{domain} 不由此處提供服務。",
        "ja": "このゲートウェイはフェデレーションドメイン間でスタンザを中継しません。"
        "{domain} はここでは提供されていません。",
    },
    "router.subscription_required": {
        "en": "{recipient} accepts messages and subscription requests from {sender} only after adding "
        "{sender} as a contact.",
        "zh-TW": "{recipient} 須先將 {sender} 加為聯絡人，才會接受來自 {sender} 的訊息與訂閱請求。",
        "ja": "{recipient} は {sender} を連絡先に追加した後にのみ、"
        "{sender} からのメッセージと購読リクエストを受け付けます。",
    },
}

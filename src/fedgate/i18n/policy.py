"""Texts for the policy engine: notes, rules, methods, settings, negotiation outcomes."""

MESSAGES: dict[str, dict[str, str]] = {
    # Methods
    "method.sasl_tls": {
        "en": "SASL EXTERNAL over TLS",
        "zh-TW": "TLS 上的 SASL EXTERNAL",
        "ja": "TLS 上の SASL EXTERNAL",
    },
    "method.tls_dialback": {
        "en": "Server Dialback over TLS",
        "zh-TW": "TLS 上的伺服器回撥驗證（Dialback）",
        "ja": "TLS 上のサーバーダイヤルバック",
    },
    "method.tcp_dialback": {
        "en": "Server Dialback over plain TCP",
        "zh-TW": "未加密 TCP 上的伺服器回撥驗證（Dialback）",
        "ja": "暗号化なしの TCP 上のサーバーダイヤルバック",
    },
    # Settings and values
    "setting.tls": {"en": "TLS", "zh-TW": "TLS", "ja": "TLS"},
    "setting.sasl": {"en": "SASL", "zh-TW": "SASL", "ja": "SASL"},
    "setting.dialback": {"en": "Server Dialback", "zh-TW": "伺服器回撥驗證", "ja": "サーバーダイヤルバック"},
    "setting.certificate": {"en": "certificate", "zh-TW": "憑證", "ja": "証明書"},
    "value.required": {"en": "required", "zh-TW": "必要", "ja": "必須"},
    "value.optional": {"en": "optional", "zh-TW": "選用", "ja": "任意"},
    "value.not_supported": {"en": "not supported", "zh-TW": "不支援", "ja": "非対応"},
    "value.on": {"en": "on", "zh-TW": "開啟", "ja": "オン"},
    "value.off": {"en": "off", "zh-TW": "關閉", "ja": "オフ"},
    "side.local": {"en": "our side", "zh-TW": "本端", "ja": "こちら側"},
    "side.remote": {"en": "the partner", "zh-TW": "對方", "ja": "相手側"},
    # Notes (stable codes from the matrix file)
    "note.dialback_inert_when_tls_and_sasl_required": {
        "en": "Dialback is switched on, but with both TLS and SASL required it is never used: "
        "SASL EXTERNAL over TLS is the only method.",
        "zh-TW": "雖然開啟了 Dialback，但 TLS 與 SASL 都設為必要時它永遠不會被使用；"
        "唯一的方式是 TLS 上的 SASL EXTERNAL。",
        "ja": "ダイヤルバックはオンですが、TLS と SASL がともに必須のため使われることはありません。"
        "使える方式は TLS 上の SASL EXTERNAL だけです。",
    },
    "note.sasl_needs_tls": {
        "en": "SASL is allowed but TLS is not required. SASL only works inside TLS, so whether it can be "
        "used depends on the partner agreeing to TLS; negotiation may fail with some partners.",
        "zh-TW": "允許 SASL，但 TLS 並非必要。SASL 只能在 TLS 之內運作，能否使用取決於對方是否同意 TLS；"
        "與部分協力夥伴的交涉可能會失敗。",
        "ja": "SASL は許可されていますが TLS は必須ではありません。SASL は TLS の中でしか動かないため、"
        "使えるかどうかは相手が TLS に応じるかどうか次第で、相手によっては交渉に失敗します。",
    },
    "note.no_usable_method": {
        "en": "No method is left: SASL cannot work without TLS, and Server Dialback is off.",
        "zh-TW": "沒有任何可用的方式：沒有 TLS 就無法使用 SASL，而伺服器回撥驗證又是關閉的。",
        "ja": "使える方式が残りません。TLS なしでは SASL は動かず、サーバーダイヤルバックもオフです。",
    },
    "note.sasl_or_dialback_must_be_enabled": {
        "en": "With SASL not supported, Server Dialback must be switched on; otherwise nothing can "
        "authenticate the partner.",
        "zh-TW": "SASL 設為不支援時，必須開啟伺服器回撥驗證，否則無法驗證對方的身分。",
        "ja": "SASL を非対応にする場合はサーバーダイヤルバックをオンにする必要があります。"
        "そうしないと相手を認証する手段がありません。",
    },
    "note.kind.error": {"en": "error", "zh-TW": "錯誤", "ja": "エラー"},
    "note.kind.warning": {"en": "warning", "zh-TW": "警告", "ja": "警告"},
    # Rules: why one side's setting rules out one method
    "rule.tls_not_supported": {
        "en": "{side} has TLS set to not supported, which rules out {method}",
        "zh-TW": "{side}的 TLS 設為不支援，因此排除了{method}",
        "ja": "{side}の TLS が非対応のため、{method}は使えません",
    },
    "rule.sasl_not_supported": {
        "en": "{side} has SASL set to not supported, which rules out {method}",
        "zh-TW": "{side}的 SASL 設為不支援，因此排除了{method}",
        "ja": "{side}の SASL が非対応のため、{method}は使えません",
    },
    "rule.dialback_off": {
        "en": "{side} has Server Dialback off, which rules out {method}",
        "zh-TW": "{side}關閉了伺服器回撥驗證，因此排除了{method}",
        "ja": "{side}のサーバーダイヤルバックがオフのため、{method}は使えません",
    },
    "rule.tls_required": {
        "en": "{side} has TLS set to required, which rules out {method}",
        "zh-TW": "{side}的 TLS 設為必要，因此排除了{method}",
        "ja": "{side}の TLS が必須のため、{method}は使えません",
    },
    "rule.tls_and_sasl_required": {
        "en": "{side} requires both TLS and SASL, which leaves dialback inert and rules out {method}",
        "zh-TW": "{side}同時要求 TLS 與 SASL，Dialback 因此不會被使用，排除了{method}",
        "ja": "{side}は TLS と SASL をともに必須にしているため、ダイヤルバックは使われず{method}は使えません",
    },
    "rule.certificate_invalid": {
        "en": "{side}'s certificate is not valid for its domain, which rules out {method}",
        "zh-TW": "{side}的憑證對其網域無效，因此排除了{method}",
        "ja": "{side}の証明書がそのドメインに対して有効でないため、{method}は使えません",
    },
    "rule.not_offered": {
        "en": "{side} did not offer {method}",
        "zh-TW": "{side}沒有提供{method}",
        "ja": "{side}は{method}を提示しませんでした",
    },
    # Negotiation outcomes
    "negotiate.uses": {
        "en": "The two sides will use {method}.",
        "zh-TW": "雙方將使用{method}。",
        "ja": "双方は{method}を使います。",
    },
    "negotiate.failed": {
        "en": "The two sides have no method in common; negotiation fails.",
        "zh-TW": "雙方沒有共同的驗證方式，交涉失敗。",
        "ja": "双方に共通の方式がなく、交渉は失敗します。",
    },
    "negotiate.with_reasons": {
        "en": "{verdict} Ruled out: {reasons}.",
        "zh-TW": "{verdict}排除的原因：{reasons}。",
        "ja": "{verdict}除外の理由：{reasons}。",
    },
    "negotiate.reason_separator": {"en": "; ", "zh-TW": "；", "ja": "；"},
    "negotiate.no_common_method": {
        "en": "no method is allowed by both sides",
        "zh-TW": "沒有雙方都允許的方式",
        "ja": "双方が許可する方式がありません",
    },
    "check.valid": {
        "en": "Valid. Methods in order of preference: {methods}.",
        "zh-TW": "有效。依優先順序的驗證方式：{methods}。",
        "ja": "有効です。優先順の方式：{methods}。",
    },
    "check.invalid": {
        "en": "Not valid: no authentication method can ever succeed with these settings.",
        "zh-TW": "無效：以這些設定，任何驗證方式都不可能成功。",
        "ja": "無効です。この設定ではどの認証方式も成功しません。",
    },
    "check.none": {"en": "none", "zh-TW": "無", "ja": "なし"},
}

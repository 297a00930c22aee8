# Chinese text uses full-width punctuation on purpose.
# ruff: noqa: RUF001
"""The shipped default templates: every trigger in English, Arabic, Chinese and Latvian.
A program overrides any of them per locale and experiment variant; whatever is missing falls
back to the program's English, then to these defaults, then to the English default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["transactional", "marketing"]


@dataclass(frozen=True)
class Trigger:
    name: str
    category: Category
    # Whether it also appears in the participant's in-app feed.
    in_app: bool
    # Ops messages go to the program's ops addresses, not to a participant.
    ops: bool = False


TRIGGERS: dict[str, Trigger] = {
    t.name: t
    for t in (
        Trigger("welcome", "transactional", in_app=True),
        # The thank-you and the purchase notice go by email only: the feed stays about
        # the participant's own milestones (welcome, rewards).
        Trigger("referral_signed_up", "transactional", in_app=False),
        Trigger("referral_converted", "transactional", in_app=False),
        Trigger("reward_issued", "transactional", in_app=True),
        Trigger("reward_available", "transactional", in_app=True),
        Trigger("milestone_reached", "transactional", in_app=True),
        Trigger("milestone_nudge", "marketing", in_app=True),
        Trigger("share_reminder", "marketing", in_app=True),
        Trigger("reward_failed", "transactional", in_app=False, ops=True),
        Trigger("referral_flagged", "transactional", in_app=False, ops=True),
    )
}

RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur", "ps", "sd", "yi", "dv", "ug"})

# (subject, text body) per trigger. Bodies are sandboxed Jinja2; amounts arrive formatted.
DEFAULTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "welcome": (
            "Welcome to the referral program",
            "Share your link {{ link_url }} with friends: when they join, you are both rewarded.",
        ),
        "referral_signed_up": (
            "A friend just joined, thank you!",
            "Someone you invited just signed up with your link. Thank you for spreading the word!",
        ),
        "referral_converted": (
            "Your friend made a purchase",
            "A friend you referred just made a purchase. Your reward is on its way.",
        ),
        "reward_issued": (
            "You earned a reward",
            "You earned {{ amount }} for a referral."
            "{% if coupon_code %} Your code: {{ coupon_code }}{% endif %}",
        ),
        "reward_available": (
            "Your pending reward is now available",
            "Your reward of {{ amount }} is now available."
            "{% if coupon_code %} Your code: {{ coupon_code }}{% endif %}",
        ),
        "milestone_reached": (
            "You reached {{ threshold }} referrals",
            "{% if perk %}You unlocked: {{ perk }}.{% else %}You earned {{ amount }}.{% endif %}"
            " Thank you!",
        ),
        "milestone_nudge": (
            "One more referral to go",
            "You have {{ converted }} successful referrals. One more unlocks your next reward "
            "at {{ threshold }}. Your link: {{ link_url }}",
        ),
        "share_reminder": (
            "Your friends are waiting",
            "You have not shared your link yet. Share {{ link_url }} and earn a reward for "
            "every friend who joins.",
        ),
        "reward_failed": (
            "[ops] A reward could not be delivered",
            "Reward {{ reward_id }} ({{ amount }}, {{ side }}) failed: {{ reason }}",
        ),
        "referral_flagged": (
            "[ops] A referral is held for review",
            "Referral {{ referral_id }} was flagged by: {{ rules }}.",
        ),
    },
    "ar": {
        "welcome": (
            "مرحبًا بك في برنامج الإحالة",
            "شارك رابطك {{ link_url }} مع أصدقائك: عندما ينضمون، تحصلان كلاكما على مكافأة.",
        ),
        "referral_signed_up": (
            "انضم صديق للتو، شكرًا لك!",
            "اشترك للتو شخص دعوته باستخدام رابطك. شكرًا لك على نشر الخبر!",
        ),
        "referral_converted": (
            "أجرى صديقك عملية شراء",
            "أجرى صديق أحلته عملية شراء للتو. مكافأتك في الطريق.",
        ),
        "reward_issued": (
            "لقد ربحت مكافأة",
            "لقد ربحت {{ amount }} مقابل إحالة."
            "{% if coupon_code %} رمزك: {{ coupon_code }}{% endif %}",
        ),
        "reward_available": (
            "مكافأتك المعلّقة متاحة الآن",
            "مكافأتك البالغة {{ amount }} متاحة الآن."
            "{% if coupon_code %} رمزك: {{ coupon_code }}{% endif %}",
        ),
        "milestone_reached": (
            "لقد وصلت إلى {{ threshold }} إحالات",
            "{% if perk %}لقد حصلت على: {{ perk }}.{% else %}لقد ربحت {{ amount }}.{% endif %}"
            " شكرًا لك!",
        ),
        "milestone_nudge": (
            "بقيت إحالة واحدة فقط",
            "لديك {{ converted }} إحالات ناجحة. إحالة واحدة أخرى تفتح مكافأتك التالية عند "
            "{{ threshold }}. رابطك: {{ link_url }}",
        ),
        "share_reminder": (
            "أصدقاؤك بانتظارك",
            "لم تشارك رابطك بعد. شارك {{ link_url }} واربح مكافأة عن كل صديق ينضم.",
        ),
        "reward_failed": (
            "[ops] تعذّر تسليم مكافأة",
            "فشلت المكافأة {{ reward_id }} ({{ amount }}، {{ side }}): {{ reason }}",
        ),
        "referral_flagged": (
            "[ops] إحالة قيد المراجعة",
            "تم تعليم الإحالة {{ referral_id }} بواسطة: {{ rules }}.",
        ),
    },
    "zh": {
        "welcome": (
            "欢迎加入推荐计划",
            "与朋友分享你的链接 {{ link_url }}：他们加入后，你们双方都能获得奖励。",
        ),
        "referral_signed_up": (
            "有朋友刚刚加入，谢谢你！",
            "你邀请的朋友刚刚通过你的链接注册。感谢你的分享！",
        ),
        "referral_converted": (
            "你的朋友完成了购买",
            "你推荐的朋友刚刚完成了一笔购买。你的奖励正在路上。",
        ),
        "reward_issued": (
            "你获得了一份奖励",
            "你因一次推荐获得了 {{ amount }}。"
            "{% if coupon_code %}你的兑换码：{{ coupon_code }}{% endif %}",
        ),
        "reward_available": (
            "你的待发放奖励现已可用",
            "你的 {{ amount }} 奖励现已可用。"
            "{% if coupon_code %}你的兑换码：{{ coupon_code }}{% endif %}",
        ),
        "milestone_reached": (
            "你已达成 {{ threshold }} 次推荐",
            "{% if perk %}你已解锁：{{ perk }}。{% else %}你获得了 {{ amount }}。{% endif %}"
            "谢谢你！",
        ),
        "milestone_nudge": (
            "只差一次推荐",
            "你已有 {{ converted }} 次成功推荐。再推荐一次，达到 {{ threshold }} 次即可解锁"
            "下一个奖励。你的链接：{{ link_url }}",
        ),
        "share_reminder": (
            "你的朋友在等你",
            "你还没有分享你的链接。分享 {{ link_url }}，每有一位朋友加入你都能获得奖励。",
        ),
        "reward_failed": (
            "[ops] 奖励发放失败",
            "奖励 {{ reward_id }}（{{ amount }}，{{ side }}）失败：{{ reason }}",
        ),
        "referral_flagged": (
            "[ops] 推荐待审核",
            "推荐 {{ referral_id }} 被以下规则标记：{{ rules }}。",
        ),
    },
    "lv": {
        "welcome": (
            "Laipni lūdzam ieteikumu programmā",
            "Dalieties ar savu saiti {{ link_url }} ar draugiem: kad viņi pievienosies, jūs "
            "abi saņemsiet atlīdzību.",
        ),
        "referral_signed_up": (
            "Draugs tikko pievienojās, paldies!",
            "Kāds, ko uzaicinājāt, tikko reģistrējās ar jūsu saiti. Paldies, ka dalāties!",
        ),
        "referral_converted": (
            "Jūsu draugs veica pirkumu",
            "Jūsu ieteiktais draugs tikko veica pirkumu. Jūsu atlīdzība ir ceļā.",
        ),
        "reward_issued": (
            "Jūs nopelnījāt atlīdzību",
            "Jūs nopelnījāt {{ amount }} par ieteikumu."
            "{% if coupon_code %} Jūsu kods: {{ coupon_code }}{% endif %}",
        ),
        "reward_available": (
            "Jūsu gaidošā atlīdzība tagad ir pieejama",
            "Jūsu atlīdzība {{ amount }} apmērā tagad ir pieejama."
            "{% if coupon_code %} Jūsu kods: {{ coupon_code }}{% endif %}",
        ),
        "milestone_reached": (
            "Jūs sasniedzāt {{ threshold }} ieteikumus",
            "{% if perk %}Jūs atbloķējāt: {{ perk }}.{% else %}Jūs nopelnījāt {{ amount }}."
            "{% endif %} Paldies!",
        ),
        "milestone_nudge": (
            "Vēl tikai viens ieteikums",
            "Jums ir {{ converted }} veiksmīgi ieteikumi. Vēl viens atbloķēs nākamo atlīdzību "
            "pie {{ threshold }}. Jūsu saite: {{ link_url }}",
        ),
        "share_reminder": (
            "Jūsu draugi gaida",
            "Jūs vēl neesat dalījies ar savu saiti. Dalieties ar {{ link_url }} un nopelniet "
            "atlīdzību par katru draugu, kas pievienojas.",
        ),
        "reward_failed": (
            "[ops] Atlīdzību neizdevās piegādāt",
            "Atlīdzība {{ reward_id }} ({{ amount }}, {{ side }}) neizdevās: {{ reason }}",
        ),
        "referral_flagged": (
            "[ops] Ieteikums gaida pārbaudi",
            "Ieteikumu {{ referral_id }} atzīmēja: {{ rules }}.",
        ),
    },
}

UNSUBSCRIBE_LABEL = {
    "en": "Unsubscribe",
    "ar": "إلغاء الاشتراك",
    "zh": "退订",
    "lv": "Atteikties no abonēšanas",
}


def language_of(locale: str | None) -> str:
    """'ar-EG' -> 'ar'; anything unusable -> 'en'."""
    lang = (locale or "en").replace("_", "-").split("-", 1)[0].lower()
    return lang if lang.isalpha() and 2 <= len(lang) <= 3 else "en"


def direction(locale: str | None) -> str:
    return "rtl" if language_of(locale) in RTL_LANGUAGES else "ltr"


def locale_chain(locale: str | None) -> list[str]:
    """Locales to try for a template, most specific first, ending in English."""
    chain: list[str] = []
    if locale:
        chain.append(locale.replace("_", "-"))
    for fallback in (language_of(locale), "en"):
        if fallback not in chain:
            chain.append(fallback)
    return chain


def default_template(trigger: str, locale: str | None) -> tuple[str, str]:
    for candidate in locale_chain(locale):
        if trigger in DEFAULTS.get(candidate, {}):
            return DEFAULTS[candidate][trigger]
    return DEFAULTS["en"][trigger]

"""How two records are compared: normalised names, blocking keys and the score of a pair.

Pure Python, the same on both databases. A pair is considered only when the two
records share a blocking key (``keys_for_*``): keys are stored in
``duplicates.DuplicateKey`` so that candidates are a join on an index, never all
pairs. ``score_*`` then says how alike the two are (0..1) and why.

Names: NFKC-folded, case-folded, punctuation dropped. Latin names compare as
their sorted words (so "Smith, John" is "John Smith"); names in Chinese,
Japanese or Korean script have no spaces and compare by character bigrams.
"""

import re
import unicodedata
from difflib import SequenceMatcher

# A pair below this score is not a candidate.
THRESHOLD = 0.7
# A blocking key shared by more records than this says little (a common surname at a large
# company, "gmail.com"): its group is skipped rather than compared pairwise.
MAX_GROUP = 50

SAME_EMAIL = "same_email"
SAME_PHONE = "same_phone"
SIMILAR_NAME_SAME_COMPANY = "similar_name_same_company"
SIMILAR_NAME_SAME_EMAIL_LOCAL_PART = "similar_name_same_email_local_part"
SAME_DOMAIN = "same_domain"
SIMILAR_NAME = "similar_name"

# Mail providers whose domain names no company.
FREE_MAIL_DOMAINS = frozenset(
    "gmail.com googlemail.com yahoo.com hotmail.com outlook.com live.com icloud.com me.com aol.com "
    "qq.com 163.com 126.com sina.com sina.cn sohu.com foxmail.com yeah.net 139.com aliyun.com "
    "proton.me protonmail.com gmx.de gmx.net web.de mail.ru yandex.ru".split()
)
# Words that say what kind of company it is, not which one.
COMPANY_WORDS = frozenset(
    "inc inc. incorporated ltd ltd. limited llc llp plc co co. corp corp. corporation company gmbh ag sa sas "
    "bv nv oy ab srl spa pty kk the group holdings".split()
)
COMPANY_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "集团", "公司")

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def fold(text):
    """``text`` NFKC-folded, case-folded, without punctuation, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def is_cjk(text):
    return bool(_CJK.search(text or ""))


def person_name(text):
    return fold(text)


def company_name(text):
    """A company's name without the words that say what kind of company it is."""
    name = fold(text)
    for suffix in COMPANY_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)].strip()
            break
    words = [word for word in name.split() if word not in COMPANY_WORDS]
    return " ".join(words) or name


def name_tokens(name):
    """The blocking tokens of a folded name: its words, or its character bigrams in CJK script."""
    if is_cjk(name):
        chars = name.replace(" ", "")
        if len(chars) < 2:
            return {chars} if chars else set()
        return {chars[i : i + 2] for i in range(len(chars) - 1)}
    return {word for word in name.split() if len(word) >= 2}


def _bigrams(text):
    text = text.replace(" ", "")
    return {text[i : i + 2] for i in range(len(text) - 1)} if len(text) > 1 else {text}


def name_similarity(a, b):
    """How alike two folded names are, 0..1 (1: the same)."""
    if not a or not b:
        return 0.0
    if a.replace(" ", "") == b.replace(" ", ""):
        return 1.0
    if is_cjk(a) or is_cjk(b):
        x, y = _bigrams(a), _bigrams(b)
        dice = 2 * len(x & y) / (len(x) + len(y))
        return max(dice, SequenceMatcher(None, a.replace(" ", ""), b.replace(" ", "")).ratio() * 0.9)
    sorted_a, sorted_b = " ".join(sorted(a.split())), " ".join(sorted(b.split()))
    return max(SequenceMatcher(None, a, b).ratio(), SequenceMatcher(None, sorted_a, sorted_b).ratio())


def email_parts(email):
    email = (email or "").strip().casefold()
    if "@" not in email:
        return "", ""
    local, domain = email.rsplit("@", 1)
    return local.split("+", 1)[0], domain


# Customers: a row is (id, name, email, phone_e164, company_id).


def keys_for_customer(name, email, phone_e164, company_id):
    folded = person_name(name)
    keys = set()
    if email:
        keys.add("e:" + email.strip().casefold())
    local, _domain = email_parts(email)
    if len(local) >= 3:
        keys.add("l:" + local)
    if phone_e164:
        keys.add("p:" + phone_e164)
    if company_id is not None:
        keys.update(f"c:{company_id}:{token}" for token in name_tokens(folded))
    return keys


def score_customers(a, b):
    """``(score, reasons)`` of two customer rows ``(id, name, email, phone_e164, company_id)``."""
    _, name_a, email_a, phone_a, company_a = a
    _, name_b, email_b, phone_b, company_b = b
    similarity = name_similarity(person_name(name_a), person_name(name_b))
    rules = []
    if email_a and email_b and email_a.strip().casefold() == email_b.strip().casefold():
        rules.append((SAME_EMAIL, 0.95))
    if phone_a and phone_a == phone_b:
        # A shared number alone may be an office's switchboard: it counts for much only with alike names.
        rules.append((SAME_PHONE, 0.6 + 0.4 * similarity if similarity >= 0.6 else 0.5))
    if company_a is not None and company_a == company_b and similarity >= 0.85:
        rules.append((SIMILAR_NAME_SAME_COMPANY, 0.5 + 0.45 * similarity))
    local_a, local_b = email_parts(email_a)[0], email_parts(email_b)[0]
    if local_a and local_a == local_b and similarity >= 0.7:
        rules.append((SIMILAR_NAME_SAME_EMAIL_LOCAL_PART, 0.4 + 0.5 * similarity))
    return _combine(rules)


# Companies: a row is (id, name, domain, website, email domains of its people).


def company_domains(domain, website, email_domains=()):
    from companies.names import domain_of

    found = {domain_of(domain), domain_of(website)}
    found.update(d for d in email_domains if d not in FREE_MAIL_DOMAINS)
    return {d for d in found if d}


def keys_for_company(name, domains):
    keys = {"d:" + domain for domain in domains}
    keys.update("n:" + token for token in name_tokens(company_name(name)))
    return keys


def score_companies(a, b):
    """``(score, reasons)`` of two company rows ``(id, name, domains)``."""
    _, name_a, domains_a = a
    _, name_b, domains_b = b
    similarity = name_similarity(company_name(name_a), company_name(name_b))
    rules = []
    if domains_a & domains_b:
        rules.append((SAME_DOMAIN, 0.75 + 0.2 * similarity))
    if similarity >= 0.9:
        rules.append((SIMILAR_NAME, 0.3 + 0.6 * similarity))
    return _combine(rules)


def _combine(rules):
    """One score from the rules a pair meets: each is evidence on its own, and they add up."""
    if not rules:
        return 0.0, []
    remaining = 1.0
    for _reason, value in rules:
        remaining *= 1 - value
    return round(min(1.0, 1 - remaining), 3), [reason for reason, _value in rules]

"""How a company's name and domain are compared and stored."""

import re
import unicodedata

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


# The length of Company.name_key: NFKC can make a name longer (one "ﷺ" is 18 letters), so a key is cut there.
NAME_KEY_MAX_LENGTH = 200


def name_key(name):
    """``name`` ignoring case, spacing and full-width/half-width forms (NFKC), at most ``NAME_KEY_MAX_LENGTH`` long.

    ``" ABC  科技 "``, ``"abc 科技"`` and ``"ＡＢＣ 科技"`` are one company.
    """
    folded = unicodedata.normalize("NFKC", name or "").casefold()
    words = unicodedata.normalize("NFKC", folded).split()
    return " ".join(" ".join(words)[:NAME_KEY_MAX_LENGTH].split())


def domain_of(value):
    """The bare host of a domain or web address: ``https://www.Example.com/about`` -> ``example.com``.

    Empty for an empty value. Lower case, without scheme, credentials, ``www.``,
    port, path, query or trailing dot.
    """
    text = (value or "").strip().lower()
    text = _SCHEME.sub("", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1]
    text = text.split(":", 1)[0].rstrip(".")
    if text.startswith("www."):
        text = text[4:]
    return text


def group_names(rows):
    """Company texts grouped into companies: ``{key: (name, owner_id, [record ids])}``.

    ``rows`` are ``(id, text, owner_id)`` in id order. Texts that differ only in
    case or spacing are one company, named by its most common spelling (the
    earliest record's on a tie) and owned by its records' owner when they all have
    the same one, by no one otherwise. Blank texts are left out.
    """
    spellings, owners, members, first_seen = {}, {}, {}, {}
    for pk, text, owner_id in rows:
        name = " ".join((text or "").split())
        if not name:
            continue
        key = name_key(name)
        counts = spellings.setdefault(key, {})
        counts[name] = counts.get(name, 0) + 1
        first_seen.setdefault((key, name), pk)
        owners.setdefault(key, set()).add(owner_id)
        members.setdefault(key, []).append(pk)
    groups = {}
    for key, pks in members.items():
        counts = spellings[key]
        name = min(counts, key=lambda spelling: (-counts[spelling], first_seen[(key, spelling)]))  # noqa: B023
        owner_ids = owners[key]
        groups[key] = (name, next(iter(owner_ids)) if len(owner_ids) == 1 else None, pks)
    return groups

"""A labelled sample of customers: 200 people (half Latin, half Chinese names), 100 of them entered a
second time in the ways people really do (another spelling, case or width, a typo, the number written
otherwise, another mailbox), 10 entered again in a way no rule can see (a nickname or pinyin, nothing
shared: 10 true pairs that are missed), 5 namesakes at one company who are two people (7 pairs wrongly
found: two of them also match their namesake's second entry), and 20 look-alikes that are not the same person (a shared switchboard, a colleague with the
same surname). 335 records, 110 true pairs."""

from companies.models import Company
from customers.models import Customer

FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
]
LAST = [
    "Anderson",
    "Baker",
    "Carter",
    "Dalton",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ivanov",
    "Jensen",
    "Kowalski",
    "Lambert",
    "Moreau",
    "Novak",
    "Olsen",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Vargas",
    "Wagner",
]
SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡"]
GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "志强",
    "海燕",
    "晓东",
    "国庆",
    "红梅",
    "文博",
]
COMPANIES = 30


def _name(i):
    # Every one of the 200 names differs (100 Latin for odd i, 100 Chinese for even i).
    k = i // 2
    if i % 2:
        return f"{FIRST[k % 20]} {LAST[(k // 20 + k * 3) % 23]}"
    return SURNAMES[k % 15] + GIVEN[(k // 15 + k) % 30]


def _local(i):
    return f"person{i:03d}"


def _phone(i):
    return f"+86 1391234{i:04d}"


def _typo(name):
    if " " in name:
        first, last = name.split(" ", 1)
        return f"{first} {last[:-2]}{last[-1]}{last[-2]}"  # two letters swapped
    return " ".join(name)  # Chinese written with spaces between the characters


def _fullwidth(name):
    return "".join(
        chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ("\u3000" if ch == " " else ch) for ch in name.upper()
    )


def build():
    """Create the sample; returns the set of true duplicate pairs ``{(smaller id, larger id)}``."""
    companies = [Company.objects.create(name=f"Firm {n} Ltd", domain=f"firm{n}.example") for n in range(COMPANIES)]
    base = []
    for i in range(200):
        base.append(
            Customer.objects.create(
                name=_name(i),
                email=f"{_local(i)}@firm{i % COMPANIES}.example",
                phone=_phone(i),
                company=companies[i % COMPANIES],
            )
        )
    truth = set()
    for j in range(100):
        i = j * 2 + (j % 2)  # as many Latin as Chinese originals
        original = base[i]
        variant = j % 4
        if variant == 0:  # the number written otherwise, the name in another case and spacing, no email
            copy = Customer(name=f"  {original.name.lower()} ", phone=f"+86 139-1234-{i:04d}", company=original.company)
        elif variant == 1:  # a typo, the same mailbox name at another domain, the same company
            copy = Customer(name=_typo(original.name), email=f"{_local(i)}@old-firm.example", company=original.company)
        elif variant == 2:  # the words the other way round, a private mailbox, no company
            words = original.name.split()
            name = " ".join(reversed(words)) if len(words) > 1 else original.name
            copy = Customer(name=name, email=f"{_local(i)}@gmail.com")
        else:  # full-width upper case, same company, nothing else
            copy = Customer(name=_fullwidth(original.name), company=original.company)
        copy.save()
        truth.add((min(original.pk, copy.pk), max(original.pk, copy.pk)))
    # Hard cases, beyond what the rules can tell, so that the figures are not flattered:
    for k in range(10):  # the same person by a nickname or in pinyin, sharing no email, phone or company: missed
        i = 150 + k
        other = "Bob " + base[i].name.split()[-1] if i % 2 else "Xiao " + str(k)
        copy = Customer.objects.create(name=other)
        truth.add((min(base[i].pk, copy.pk), max(base[i].pk, copy.pk)))
    for k in range(5):  # namesakes at one company, really two people: found, wrongly
        i = 60 + k * 3
        Customer.objects.create(name=base[i].name, company=base[i].company)
    for k in range(10):  # a colleague on the same switchboard number
        i = k * 13
        Customer.objects.create(name=_name(i + 101), phone=_phone(i), company=base[i].company)
    for k in range(10):  # the same surname and company, another person
        i = k * 2 * 9
        Customer.objects.create(name=SURNAMES[i % 15] + "小" + GIVEN[(k * 11) % 30], company=base[i].company)
    return truth

import pytest

from duplicates import matching


@pytest.mark.parametrize(
    ("a", "b", "at_least"),
    [
        ("John Smith", "Smith, John", 0.99),
        ("Jon Smith", "John Smith", 0.9),
        ("王小明", "王 小明", 0.99),
        ("ＡＢＣ 科技", "abc 科技", 0.99),
    ],
)
def test_alike_names_score_high(a, b, at_least):
    assert matching.name_similarity(matching.person_name(a), matching.person_name(b)) >= at_least


@pytest.mark.parametrize(("a", "b"), [("John Smith", "Mary Jones"), ("王小明", "李大伟"), ("Anna Lee", "Hannah Leeds")])
def test_different_names_score_low(a, b):
    assert matching.name_similarity(matching.person_name(a), matching.person_name(b)) < 0.85


def test_chinese_names_block_by_character_bigrams():
    assert matching.name_tokens("王小明") == {"王小", "小明"}
    assert matching.name_tokens("john smith") == {"john", "smith"}


def test_company_names_compare_without_their_legal_form():
    assert matching.company_name("Acme, Inc.") == "acme"
    assert matching.company_name("北京阿里巴巴科技有限公司") == "北京阿里巴巴科技"


def test_free_mail_domains_name_no_company():
    assert matching.company_domains(None, "https://www.Acme.com/about", {"gmail.com", "acme.io"}) == {
        "acme.com",
        "acme.io",
    }


def test_same_phone_with_an_unrelated_name_is_not_a_duplicate():
    score, reasons = matching.score_customers(
        (1, "John Smith", None, "+8613800138000", None), (2, "Mary Jones", None, "+8613800138000", None)
    )
    assert score < matching.THRESHOLD


def test_same_phone_and_alike_name_is_a_duplicate_with_both_reasons():
    score, reasons = matching.score_customers(
        (1, "John Smith", "js@a.com", "+8613800138000", 5), (2, "Jon Smith", "js@b.com", "+8613800138000", 5)
    )
    assert score >= 0.9
    assert reasons == [
        matching.SAME_PHONE,
        matching.SIMILAR_NAME_SAME_COMPANY,
        matching.SIMILAR_NAME_SAME_EMAIL_LOCAL_PART,
    ]

"""The admin in Simplified Chinese: chosen by the browser, or by DJANGO_LANGUAGE_CODE."""

import gettext
import os
import re
import shutil

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.factories import CustomerFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

CATALOGUE = settings.BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES"


def test_dashboard_follows_the_browser_language(admin_client):
    OpportunityFactory()
    response = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = response.content.decode()
    assert '<html lang="zh-hans"' in html
    for text in ["销售仪表盘", "销售管道", "赢单率（按数量）", "最近的互动", "潜在客户"]:
        assert text in html
    english = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Sales dashboard" in english and "销售仪表盘" not in english


def test_changelists_filters_and_actions_in_chinese(admin_client):
    CustomerFactory()
    html = admin_client.get("/admin/customers/customer/", HTTP_ACCEPT_LANGUAGE="zh-Hans-CN,zh;q=0.9").content.decode()
    for text in ["进行中商机金额", "最近互动", "30 天内无互动", "将所选客户的状态设为“意向客户”", "导入", "导出"]:
        assert text in html
    opportunities = admin_client.get("/admin/opportunities/opportunity/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "加权金额" in opportunities.content.decode() and "1,000 至 10,000" in opportunities.content.decode()


def test_the_app_lists_hidden_headings_are_translated_too(admin_client):
    # Read out by screen readers; Django's own Chinese catalogue lacks them.
    html = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for english, chinese in [
        ("Model name", "模型名称"),
        ("Add link", "添加链接"),
        ("Change or view list link", "修改或查看列表链接"),
    ]:
        assert f'<th scope="col">{chinese}</th>' in html and english not in html


def test_the_export_page_labels_its_columns_in_the_readers_language_with_the_files_column_names(admin_client):
    form = admin_client.get("/admin/interactions/interaction/export/", HTTP_ACCEPT_LANGUAGE="zh-hans").context["form"]

    labels = [field.label for field in form.fields.values() if getattr(field, "is_selectable_field", False)]

    assert "类型 (interaction_type)" in labels and "备注 (notes)" in labels
    assert "Interaction Type" not in labels and "Notes" not in labels


def test_the_export_page_has_no_english_left_where_the_library_has_no_chinese(admin_client):
    # django-import-export's Chinese catalogue leaves these empty; the project's own catalogue fills them.
    page = admin_client.get("/admin/interactions/interaction/export/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert "全选" in page.content.decode() and "Select all" not in page.content.decode()


def test_language_code_setting_applies_without_a_browser_preference(admin_client, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    html = admin_client.get("/admin/").content.decode()
    assert "销售仪表盘" in html


def _po_entries(path=CATALOGUE / "django.po"):
    """Each entry of a catalogue, and whether it is marked fuzzy."""
    text = path.read_text(encoding="utf-8")
    for block in text.split("\n\n")[1:]:
        fields = {}
        key = None
        fuzzy = False
        for line in block.splitlines():
            if line.startswith("#"):
                fuzzy = fuzzy or (line.startswith("#,") and "fuzzy" in line)
                continue
            match = re.match(r'^(msgid_plural|msgid|msgstr(?:\[0\])?) "(.*)"$', line)
            if match:
                key, value = match.groups()
                fields[key] = value
            elif key:
                fields[key] += line.strip()[1:-1]
        yield fields, fuzzy


def _unescaped(text):
    return text.encode().decode("unicode_escape").encode("latin-1").decode()


def test_every_string_is_translated_and_compiled():
    compiled = gettext.GNUTranslations(open(CATALOGUE / "django.mo", "rb"))  # noqa: SIM115
    entries = [entry for entry, _ in _po_entries()]
    assert len(entries) > 100
    for entry in entries:
        translation = entry.get("msgstr", entry.get("msgstr[0]"))
        assert translation, entry["msgid"]
        msgid = _unescaped(entry["msgid"])
        # A translation may be the text itself ("URL"): the compiled catalogue is compared with the .po.
        if "msgid_plural" in entry:
            assert compiled.ngettext(msgid, "x", 1) == _unescaped(translation), msgid
        else:
            assert compiled.gettext(msgid) == _unescaped(translation), msgid


# What makemessages reads (its default extensions), and the directories it is not to read.
SOURCE_EXTENSIONS = (".py", ".html", ".txt")
NOT_SOURCE = {"node_modules", "__pycache__", "locale", "staticfiles", "test-artifacts"}


def _copy_sources(destination):
    for directory, subdirectories, files in os.walk(settings.BASE_DIR):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".") and name not in NOT_SOURCE]
        target = destination / os.path.relpath(directory, settings.BASE_DIR)
        for name in files:
            if name.endswith(SOURCE_EXTENSIONS):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(os.path.join(directory, name), target / name)
    (destination / "locale" / "zh_Hans" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy(CATALOGUE / "django.po", destination / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="makemessages needs GNU gettext")
def test_makemessages_finds_no_text_without_a_translation(tmp_path, monkeypatch, settings):
    # The documented update (docs/admin.md), run on a copy of the sources: a text marked for
    # translation in the code that the committed catalogue lacks comes out untranslated or fuzzy.
    _copy_sources(tmp_path)
    monkeypatch.chdir(tmp_path)
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    call_command("makemessages", locale=["zh_Hans"], ignore_patterns=[".venv"], no_location=True, verbosity=0)
    untranslated = [
        entry["msgid"]
        for entry, fuzzy in _po_entries(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
        if fuzzy or not entry.get("msgstr", entry.get("msgstr[0]"))
    ]
    assert not untranslated, "texts to translate after makemessages (docs/admin.md):\n" + "\n".join(untranslated)

"""docs/whatsapp.md tells a user every message template to create in Meta before the first brief, exactly as the
bundled playbooks send them (name, language, number and order of variables), and the README links it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playbooks.loader import load_playbooks

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "whatsapp.md"


@pytest.fixture(scope="module")
def doc() -> str:
    assert DOC.is_file(), "docs/whatsapp.md is missing"
    return DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("template", sorted(load_playbooks().briefs.values(), key=lambda t: t.name),
                         ids=lambda t: t.name)
def test_every_brief_template_is_documented_with_name_language_and_variables(doc, template):
    row = next((line for line in doc.splitlines() if line.startswith(f"| `{template.whatsapp_template}` |")), None)
    assert row is not None, f"no table row for {template.whatsapp_template}"
    assert f"| `{template.language}` |" in row
    section = doc.split(f"**`{template.whatsapp_template}`** (playbook `{template.name}`, ")[1].split("**`")[0]
    assert f"parameter{'s' if len(template.parameters) > 1 else ''} `{', '.join(template.parameters)}`" in section
    body = re.search(r"```\n(.+?)\n```", section, re.S).group(1)  # the suggested template body
    variables = re.findall(r"\{\{(\d+)\}\}", body)
    assert variables == [str(n) for n in range(1, len(template.parameters) + 1)]  # exactly these, in order
    assert not re.match(r"^\{\{\d+\}\}", body) and not re.search(r"\{\{\d+\}\}\W*$", body)  # Meta refuses these
    assert "Sample" in section


def test_setup_steps_are_all_there(doc):
    for needed in ("Phone number ID", "WHATSAPP_PHONE_NUMBER_ID", "/whatsapp/webhook", "WHATSAPP_VERIFY_TOKEN",
                   "WHATSAPP_APP_SECRET", "**`messages`**", "System User", "`whatsapp_business_messaging`",
                   "expiration **Never**", "Test numbers", "132001"):
        assert needed in doc, needed


def test_readme_links_the_whatsapp_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    whatsapp = next(line for line in readme.splitlines() if line.startswith("- **WhatsApp**"))
    assert "[docs/whatsapp.md](docs/whatsapp.md)" in whatsapp

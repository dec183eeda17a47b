"""The README tells the truth about the code: its flags table, its layout section and its links."""
import os
import re

from conftest import ROOT

README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def test_the_flags_table_is_the_flag_definitions():
    import main
    assert main.flags_table() in README, "regenerate the table: python -c 'import main; print(main.flags_table())'"


def test_every_path_in_the_layout_section_exists():
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths = re.findall(r"^\| `([^`]+)`", section, flags=re.M)
    assert len(paths) > 10
    for entry in paths:
        for path in re.findall(r"[\w./-]+", entry.replace("`", "")):
            assert os.path.exists(os.path.join(ROOT, path)), f"README's layout names {path}, which does not exist"


def test_every_relative_link_and_image_exists():
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", README)
               if not t.startswith(("http://", "https://", "#"))}
    assert "assets/sample_grid.png" in targets
    missing = sorted(t for t in targets if not os.path.exists(os.path.join(ROOT, t)))
    assert not missing, f"README links to files that are not in the repository: {missing}"

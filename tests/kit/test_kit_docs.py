"""docs/testing.md's pytest example runs, as written, in a user's repository."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from kit_helpers import EXAMPLES, REPO


def test_the_documented_pytest_suite_passes_in_a_users_repository(tmp_path):
    doc = (REPO / "docs" / "testing.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- doc-test: (\S+) -->\n```python\n(.*?)\n```", doc, re.S)
    assert match, "docs/testing.md lost its doc-test block"
    repo = tmp_path / "user-repo"
    shutil.copytree(EXAMPLES / "batch-recovery", repo)
    golden = repo / ".designsim" / "golden"
    shutil.copy(golden / "appendix_c_with_ids.md", golden / "good.md")
    (golden / "good.yml").write_text("stage: recovery\nexpect: pass\n")
    test_file = repo / match.group(1)
    test_file.parent.mkdir(parents=True)
    test_file.write_text(match.group(2) + "\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                            cwd=repo, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUTF8": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "6 passed" in result.stdout

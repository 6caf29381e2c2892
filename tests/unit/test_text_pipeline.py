"""knowledge/text.py: the shared spaCy pipeline keeps TensorFlow out of the action server."""
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(PROJECT), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_action_servers_text_pipeline_does_not_import_tensorflow():
    # what the action server imports: the article search and its lemmatizer
    out = run_python(
        "import sys, knowledge.search, thinc.compat\n"
        "from knowledge.text import content_lemmas\n"
        "print(content_lemmas('my legs were hurting'), 'tensorflow' in sys.modules, thinc.compat.has_tensorflow)")
    assert out == "['leg', 'hurt'] False False"


def test_tensorflow_still_imports_afterwards_and_is_left_alone_when_loaded_first():
    out = run_python(
        "import sys, knowledge.text, tensorflow\n"
        "print(sys.modules['tensorflow'] is not None, hasattr(tensorflow, 'constant'))")
    assert out == "True True"
    out = run_python("import tensorflow, knowledge.text, thinc.compat\nprint(thinc.compat.has_tensorflow)")
    assert out == "True"

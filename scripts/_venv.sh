# Sourced by scripts/test and scripts/demo: make ./.venv and install the project into it.
# Reinstalls only when pyproject.toml changed since the last install (a stamp file).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${SESSION_STORE_EXTRAS:-dev}"
STAMP="$VENV/.session-store-installed-$EXTRAS"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV" >&2
    python3 -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    echo "installing session-store[$EXTRAS] into $VENV (first run takes a minute)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$EXTRAS]"
    touch "$STAMP"
fi

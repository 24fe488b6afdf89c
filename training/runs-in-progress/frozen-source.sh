# Sourced by the launchers here: ROOT (the repository) and SRC, a copy of training/ as it was at
# commit $COMMIT (runs/src-$COMMIT, made once), so a long run is not affected by later edits.
COMMIT=${COMMIT:?set COMMIT}
ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
SRC=$ROOT/runs/src-$COMMIT
# Extracted beside it and renamed into place, so launchers started together never run a half copy
# (whichever rename comes second fails, and that copy is dropped).
if [ ! -d "$SRC" ]; then
  mkdir -p "$ROOT/runs"
  partial=$(mktemp -d "$SRC.partial.XXXXXX") || exit 1
  git -C "$ROOT" archive "$COMMIT" training | tar -x -C "$partial" || { rm -rf "$partial"; exit 1; }
  mv -T "$partial" "$SRC" 2> /dev/null || rm -rf "$partial"
fi

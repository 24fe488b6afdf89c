# Sourced by the launchers here: ROOT (the repository) and SRC, a copy of training/ as it was at
# commit $COMMIT (runs/src-$COMMIT, made once), so a long run is not affected by later edits.
COMMIT=${COMMIT:?set COMMIT}
ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
SRC=$ROOT/runs/src-$COMMIT
if [ ! -d $SRC ]; then mkdir -p $SRC && (cd $ROOT && git archive $COMMIT training | tar -x -C $SRC); fi

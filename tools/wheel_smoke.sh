#!/usr/bin/env bash
# Install eqsat-ad like any package and use it from outside the checkout:
#   build a wheel (from a copy of the checkout's files), install it into a fresh virtual
#   environment in a temporary directory, then from another directory run the demo (both
#   ways), the command line on a program file, and the Python API (optimise, compile, a
#   gradient checked against the closed form; ea.grad_fn when it exists).
# Fails (non-zero) at the first step that does not work.  Takes about a minute (the
# dependencies come from pip's cache after the first run).
#
#   bash tools/wheel_smoke.sh            # uses .venv/bin/python to build when it exists
#   PYTHON=python3.12 bash tools/wheel_smoke.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
TMP="$(mktemp -d "${TMPDIR:-/tmp}/eqsat-ad-wheel.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
say() { printf '\n== wheel smoke: %s\n' "$*"; }
t0=$(date +%s)

say "copy the checkout's files (tracked and new, not ignored) to $TMP/src"
mkdir -p "$TMP/src" "$TMP/whl" "$TMP/elsewhere"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -C "$TMP/src" -xf -
else                                   # not a git checkout (an unpacked source archive)
    tar -C "$ROOT" --exclude=.venv --exclude=build --exclude='*.egg-info' --exclude=__pycache__ -cf - . \
        | tar -C "$TMP/src" -xf -
fi

say "build the wheel"
"$PY" -m pip wheel --no-deps -q -w "$TMP/whl" "$TMP/src"
WHEEL="$(ls "$TMP"/whl/eqsat_ad-*.whl)"
echo "$WHEEL"
# every data file of the package is in the wheel
(cd "$TMP/src" && find eqsat_ad -type f ! -name '*.py' ! -name '*.pyc' | sort) > "$TMP/data_files"
"$PY" - "$WHEEL" "$TMP/data_files" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
want = [ln.strip() for ln in open(sys.argv[2]) if ln.strip()]
missing = [w for w in want if w not in names]
assert not missing, f"data files missing from the wheel: {missing}"
assert any(n.startswith("eqsat_ad/rules/") and n.endswith(".egg") for n in names), "no rules in the wheel"
print(f"{len(want)} data files, all in the wheel")
EOF

say "install it into a fresh venv"
python3 -m venv "$TMP/v"
"$TMP/v/bin/pip" install -q --disable-pip-version-check "$WHEEL"
V="$TMP/v/bin"

cd "$TMP/elsewhere"
say "from $(pwd): where the package comes from"
"$V/python" - "$TMP/v" <<'EOF'
import sys, eqsat_ad
assert eqsat_ad.__file__.startswith(sys.argv[1]), f"imported from {eqsat_ad.__file__}, not the venv"
assert "egglog" not in sys.modules, "import eqsat_ad imported egglog"
print("eqsat_ad", eqsat_ad.__version__, "from", eqsat_ad.__file__)
EOF
"$V/eqsat-ad" --version

say "python -m eqsat_ad.demo"
"$V/python" -m eqsat_ad.demo > demo1.txt
tail -n 3 demo1.txt

say "eqsat-ad demo"
"$V/eqsat-ad" demo > demo2.txt
tail -n 1 demo2.txt

say "eqsat-ad optimize prog.ad --grad x"
cat > prog.ad <<'EOF'
; softplus-sum: sum_i log(1 + exp(x_i))
(fun ((x (vec n))) (sum n (lambda (i) (log (+ 1.0 (exp (get x i)))))))
EOF
"$V/eqsat-ad" optimize prog.ad --grad x --size n=1000 --json out.json > optimized.ad
cat optimized.ad
"$V/python" -c "import json; d = json.load(open('out.json')); assert d['cost_after'] < d['cost_before'], d; print('cost', d['cost_before'], '->', d['cost_after'])"
"$V/eqsat-ad" run prog.ad --grad x --optimize --input 'x=[0.0,1.0]'
"$V/eqsat-ad" rules list > rules.txt && head -n 3 rules.txt
"$V/eqsat-ad" rules check rules/tuple.egg --examples 10 --json - > rules.json
"$V/python" -c "import json; assert json.load(open('rules.json'))[0]['ok']"

say "the Python API"
EXPECT_GRAD_FN=""
[ -f "$TMP/src/eqsat_ad/functions.py" ] && EXPECT_GRAD_FN=1
EXPECT_GRAD_FN="$EXPECT_GRAD_FN" "$V/python" - <<'EOF'
import os
import pickle
import numpy as np
import eqsat_ad as ea

f = ea.parse("(fun ((x (vec n))) (log (sum n (lambda (i) (exp (get x i))))))")
res = ea.optimize(ea.grad(f, "x"), sizes={"n": 1000})
fast = ea.compile(res.program)
x = np.array([0.5, -1.0, 2.0])
assert np.allclose(fast(x=x), np.exp(x) / np.exp(x).sum())
assert np.allclose(pickle.loads(pickle.dumps(fast))(x), fast(x))
assert pickle.loads(pickle.dumps(res.program)) == res.program
print("optimised gradient of logsumexp: ok; cost", res.cost_before, "->", res.cost)

if hasattr(ea, "grad_fn"):
    g = ea.grad_fn("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))", wrt="x",
                   cache="grad-cache")
    assert np.allclose(g(x), 2 * x)

    def loss(x):                       # a Python function, NumPy-like
        return ea.log(ea.sum(ea.exp(x)))
    v, dx = ea.value_and_grad_fn(loss, cache="grad-cache")(x)
    assert np.isclose(v, np.log(np.exp(x).sum())) and np.allclose(dx, np.exp(x) / np.exp(x).sum())
    print("ea.grad_fn, ea.value_and_grad_fn: ok")
elif os.environ.get("EXPECT_GRAD_FN"):
    raise SystemExit("ea.grad_fn is missing from the installed package (eqsat_ad/functions.py is in the source)")
else:
    print("WHEEL-SMOKE-TODO: ea.grad_fn is not in this build (no eqsat_ad/functions.py); not checked")
EOF
if [ -d grad-cache ]; then                 # a second process reads the disk cache
    "$V/python" -c "
import numpy as np, eqsat_ad as ea
g = ea.grad_fn('(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))', wrt='x', cache='grad-cache')
assert np.allclose(g(np.arange(3.0)), 2 * np.arange(3.0)); print('ea.grad_fn from the disk cache: ok')"
fi

say "all good ($(( $(date +%s) - t0 )) s)"

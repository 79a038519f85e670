#!/usr/bin/env bash
# make reproduce-zoo: the paper's experiments (configs/experiments/table*.toml,
# fig*.toml: what reproduce-llama7b, -mistral7b and -llama13b run) end to end on
# the replica zoo (docs/checkpoints.md). The zoo is written in hub layout,
# served by the local hub mimic (tests/fetch/hub_server.py, meta-llama gated),
# and `bitmerge run --fetch` downloads it into an empty models dir, as a user's
# run downloads the real checkpoints. Results go to $ZOO_OUT/results/<name>,
# never to results/.
#   ZOO_OUT   (default out/zoo)   ZOO_LIMIT (default 2 items per benchmark)
#   ZOO_ONLY  (e.g. "table3 fig3": only these experiments)
#   extra arguments go to `bitmerge run` (e.g. --dry-run, --gpus 0,1)
# Takes minutes per experiment on CPU (generation budgets are the paper's).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=${BITMERGE_TEST_PYTHON:-$root/.venv/bin/python}
bin=${BITMERGE:-$root/build/bitmerge}
data=${BITMERGE_DATA_DIR:-$root/../shared/data}
out=${ZOO_OUT:-$root/out/zoo}
limit=${ZOO_LIMIT:-2}
token=zoo-local-token

mkdir -p "$out"
[ -d "$out/hub/TIGER-Lab" ] || "$py" tests/zoo/make_zoo.py "$out/hub" --hub-layout --tokenizers "$data/tokenizers"
rm -f "$out/port"
"$py" tests/fetch/hub_server.py --data-root "$out" --hub-root "$out/hub" --port-file "$out/port" \
  --log "$out/hub.log" --token "$token" --gated-org meta-llama >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$out/port" ] && break; sleep 0.1; done
[ -s "$out/port" ] || { echo "reproduce_zoo.sh: hub_server.py did not start" >&2; exit 1; }
export HF_ENDPOINT="http://127.0.0.1:$(cat "$out/port")" HF_TOKEN=$token BITMERGE_MODELS_DIR="$out/models"
export BITMERGE_DATA_DIR="$data"

for cfg in configs/experiments/table*.toml configs/experiments/fig*.toml; do
  name=$(basename "$cfg" .toml)
  if [ -n "${ZOO_ONLY:-}" ] && ! [[ " $ZOO_ONLY " == *" $name "* ]]; then continue; fi
  echo "== $name (zoo, --limit $limit)"
  "$bin" run "$cfg" --fetch --limit "$limit" --results-dir "$out/results/$name" "$@"
  if [ -f "$out/results/$name/results.json" ]; then
    "$bin" table "$out/results/$name/results.json" --format md --storage --out "$out/results/$name/table.md"
    if command -v gnuplot >/dev/null; then
      "$bin" table "$out/results/$name/results.json" --format md --out "$out/results/$name/table.md" --plots "$out/results/$name"
    fi
  fi
done
echo "reproduce-zoo: results in $out/results"

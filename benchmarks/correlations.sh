#!/usr/bin/env bash
# Correlation of proxies and of the main combinations with NATS-Bench TSS test accuracy.
# Usage (run by hand from the repository root):
#   NASX_DATA=../shared/data benchmarks/correlations.sh DATASET SAMPLE [PROXY ...]
# (default proxies: all but ntk). Writes benchmarks/results/correlations_<dataset>_<sample>.{json,csv,png} and,
# for the combinations, ..._<mix>.json. cifar10 is scored on real CIFAR-10 test images; cifar100 and
# ImageNet16-120 on the synthetic batch (no real images of them are available here). One score cache is shared.
set -euo pipefail
usage() { sed -n '2,7s/^# \{0,1\}//p' "$0"; }
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { usage; exit 0; }
[[ $# -ge 2 ]] || { usage >&2; exit 2; }
dataset="$1"
sample="$2"
shift 2
proxies=("$@")
[[ ${#proxies[@]} -eq 0 ]] && proxies=(naswot logsynflow synflow skip pathnorm snip grasp fisher grad_norm jacob_cov \
  nregions epsilon ni params flops)
cache="${NASX_CACHE:-benchmarks/results/correlations.sqlite}"
images=()
[[ "$dataset" == cifar10 ]] && images=(--images "$NASX_DATA/cifar10_test_512_jpeg.npz")
args=()
for p in "${proxies[@]}"; do args+=(--proxy "$p"); done
out="benchmarks/results/correlations_${dataset}_${sample}"
nasx correlate --space nats-tss --dataset "$dataset" "${args[@]}" --sample "$sample" --seed 0 --cache "$cache" \
  "${images[@]}" --out "$out.json" --out "$out.csv" --plot "$out.png"
# the main combinations (every score comes from the cache by now)
for mix in "naswot logsynflow skip" "ni naswot logsynflow" "naswot logsynflow" "epsilon naswot logsynflow" \
           "naswot logsynflow jacob_cov"; do
  mixed=()
  for p in $mix; do
    [[ " ${proxies[*]} " == *" $p "* ]] || continue 2  # only mixes of the proxies scored above
    mixed+=(--proxy "$p")
  done
  nasx correlate --space nats-tss --dataset "$dataset" "${mixed[@]}" --combiner freerea --combiner rank \
    --combiner logrank --sample "$sample" --seed 0 --cache "$cache" "${images[@]}" \
    --out "${out}_${mix// /+}.json" --quiet
done

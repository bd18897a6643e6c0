#!/usr/bin/env bash
# Correlation of every proxy and of the main combinations with NATS-Bench TSS test accuracy.
# Run by hand from the repository root:  NASX_DATA=../shared/data benchmarks/correlations.sh [SAMPLE] [DATASETS...]
# Writes benchmarks/results/correlations_<dataset>.{json,csv,png}. cifar10 is scored on real CIFAR-10 test
# images; cifar100 and ImageNet16-120 on the synthetic batch (no real images of them are available here).
set -euo pipefail
sample="${1:-1000}"
shift || true
datasets=("${@:-cifar10 cifar100 ImageNet16-120}")
cache="${NASX_CACHE:-benchmarks/results/correlations.sqlite}"
for dataset in ${datasets[@]}; do
  images=()
  [[ "$dataset" == cifar10 ]] && images=(--images "$NASX_DATA/cifar10_test_512_jpeg.npz")
  proxies=()
  for p in naswot logsynflow synflow skip pathnorm snip grasp fisher grad_norm jacob_cov nregions epsilon ni \
           params flops; do proxies+=(--proxy "$p"); done
  out="benchmarks/results/correlations_${dataset}"
  nasx correlate --space nats-tss --dataset "$dataset" "${proxies[@]}" --sample "$sample" --seed 0 \
    --cache "$cache" "${images[@]}" --out "$out.json" --out "$out.csv" --plot "$out.png"
  # the main combinations: FreeREA's three proxies, and the rank-based paper's three
  for mix in "naswot logsynflow skip" "ni naswot logsynflow" "naswot logsynflow" "epsilon naswot logsynflow"; do
    args=()
    for p in $mix; do args+=(--proxy "$p"); done
    nasx correlate --space nats-tss --dataset "$dataset" "${args[@]}" --combiner freerea --combiner rank \
      --combiner logrank --sample "$sample" --seed 0 --cache "$cache" "${images[@]}" \
      --out "${out}_${mix// /+}.json" --quiet
  done
done

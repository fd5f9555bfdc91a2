#!/usr/bin/env bash
# Renders the Kubernetes manifests (kubectl kustomize, offline) and validates every object against the Kubernetes
# schemas (deploy/kubernetes/validate). Needs kubectl and node with npm.
set -euo pipefail
cd "$(dirname "$0")/.."
validator=deploy/kubernetes/validate
(cd "$validator" && npm ci --no-audit --no-fund --loglevel=error)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
  name=$(echo "${dir%/}" | tr '/' '_')
  kubectl kustomize "$dir" > "$out/$name.yaml"
  node "$validator/validate.mjs" "$out/$name.yaml" || status=1
done
exit $status

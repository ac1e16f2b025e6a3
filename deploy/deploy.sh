#!/usr/bin/env bash
# Deploy sophia-mcp with kustomize and roll back automatically when the rollout does not complete.
#
#   deploy/deploy.sh [--dry-run] [--overlay DIR] [--timeout DURATION]
#
#   --dry-run          render the manifests to stdout and stop: no cluster is contacted
#   --overlay DIR      kustomization to deploy (default: deploy/overlays/production)
#   --timeout DURATION how long the rollout may take before it is rolled back (default: 5m)
#
# The kubectl context in use is the target; KUBECTL names another kubectl binary.
# Exit codes: 0 deployed; 1 rolled back (the previous revision serves again); 2 usage;
# 3 failed with nothing to roll back to, or the rollback itself did not complete.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBECTL="${KUBECTL:-kubectl}"
OVERLAY="$HERE/overlays/production"
TIMEOUT="5m"
DRY_RUN=0
DEPLOYMENT="sophia-mcp"

log() { printf 'deploy: %s\n' "$*" >&2; }
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --overlay) [ $# -ge 2 ] || usage; OVERLAY="$2"; shift ;;
    --timeout) [ $# -ge 2 ] || usage; TIMEOUT="$2"; shift ;;
    -h|--help) usage ;;
    *) log "unknown argument: $1"; usage ;;
  esac
  shift
done

[ -f "$OVERLAY/kustomization.yaml" ] || { log "no kustomization.yaml in $OVERLAY"; exit 2; }

if [ "$DRY_RUN" = 1 ]; then
  exec "$KUBECTL" kustomize "$OVERLAY"
fi

# the namespace the overlay deploys into, read from the rendered Deployment
NAMESPACE="$("$KUBECTL" kustomize "$OVERLAY" \
  | awk '/^kind: Deployment$/ {d=1} d && /^  namespace: / {print $2; exit} /^---$/ {d=0}')"
NAMESPACE="${NAMESPACE:-default}"
log "context $("$KUBECTL" config current-context 2>/dev/null || echo '?'), namespace $NAMESPACE, overlay $OVERLAY"

revision() {
  "$KUBECTL" -n "$NAMESPACE" get deployment "$DEPLOYMENT" \
    -o 'jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}' 2>/dev/null || true
}

PREVIOUS="$(revision)"
log "revision before deploy: ${PREVIOUS:-none (first deploy)}"

log "applying"
"$KUBECTL" apply -k "$OVERLAY"

log "waiting up to $TIMEOUT for the rollout"
if "$KUBECTL" -n "$NAMESPACE" rollout status "deployment/$DEPLOYMENT" --timeout="$TIMEOUT"; then
  log "deployed: revision $(revision)"
  exit 0
fi

log "rollout did not complete"
"$KUBECTL" -n "$NAMESPACE" get pods -l "app.kubernetes.io/name=$DEPLOYMENT" -o wide >&2 || true
if [ -z "$PREVIOUS" ] || [ "$PREVIOUS" = "$(revision)" ]; then
  log "no earlier revision to roll back to: fix the cause and deploy again"
  exit 3
fi

log "rolling back to revision $PREVIOUS"
"$KUBECTL" -n "$NAMESPACE" rollout undo "deployment/$DEPLOYMENT" --to-revision="$PREVIOUS"
if "$KUBECTL" -n "$NAMESPACE" rollout status "deployment/$DEPLOYMENT" --timeout="$TIMEOUT"; then
  log "rolled back: revision $PREVIOUS serves again (now revision $(revision))"
  exit 1
fi
log "the rollback did not complete either: investigate now (deploy/RUNBOOK.md)"
exit 3

#!/usr/bin/env bash
# The README tour, runnable against a server: products -> policy -> license ->
# validate -> activate -> validate -> heartbeat -> offline file -> suspend -> history.
#   KEY=lk_test_... [BASE=http://127.0.0.1:8000] scripts/tour.sh
# tests/e2e/test_tour.py runs it against a real server, so it stays true.
set -euo pipefail
api="${BASE:-http://127.0.0.1:8000}/api/v1"
bearer=(-H "Authorization: Bearer ${KEY:?set KEY to an API key}" -H "Content-Type: application/json")
json=(-H "Content-Type: application/json")
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

product=$(curl -sf "${bearer[@]}" "$api/products" \
  -d '{"name": "Acme Desktop", "code": "acme-desktop", "keyPrefix": "ACME"}' | field "['data']['id']")
policy=$(curl -sf "${bearer[@]}" "$api/policies" \
  -d "{\"productId\": \"$product\", \"name\": \"Desktop\", \"template\": \"desktop_app\"}" \
  | field "['data']['id']")
curl -sf "${bearer[@]}" "$api/entitlements" -d '{"code": "pro", "name": "Pro features"}' >/dev/null
license=$(curl -sf "${bearer[@]}" "$api/licenses" \
  -d "{\"productId\": \"$product\", \"policyId\": \"$policy\", \"entitlements\": [\"pro\"]}")
id=$(field "['data']['id']" <<<"$license")
key=$(field "['data']['key']" <<<"$license")      # shown once: ACME-XXXX-XXXX-XXXX-XXXX
echo "license $id"

validate() {
  curl -sf "${json[@]}" "$api/licenses/validate-key" \
    -d "{\"key\": \"$key\", \"fingerprint\": \"laptop-0001\", \"entitlements\": [\"pro\"]}" \
    | field "['data']['code']"
}
echo "before activation: $(validate)"                                    # FINGERPRINT_NOT_FOUND
machine=$(curl -sf -H "Authorization: License $key" "${json[@]}" "$api/machines" \
  -d '{"fingerprint": "laptop-0001", "platform": "linux"}' | field "['data']['id']")
echo "after activation: $(validate)"                                     # VALID
curl -sf -X POST -H "Authorization: License $key" "$api/machines/$machine/heartbeat" \
  | field "['data']['heartbeatStatus']"                                   # ALIVE
curl -sf "${bearer[@]}" "$api/licenses/$id/checkout" -d '{"fingerprint": "laptop-0001"}' \
  | field "['data']['certificate'].splitlines()[0]"                       # -----BEGIN LICENSE FILE-----
curl -sf -X POST "${bearer[@]}" "$api/licenses/$id/suspend" >/dev/null
echo "suspended: $(validate)"                                            # SUSPENDED
curl -sf "${bearer[@]}" "$api/licenses/$id/events?limit=100" \
  | field "['data'][0]['type']"                                           # license.created

-- wrk script: POST DCI sync searches, rotating through the identifiers in BENCH_IDS (one per line).
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local value = ids[(counter % #ids) + 1]
  local body = '{"header":{"version":"1.0.0","message_id":"b-' .. counter .. '-' .. math.random(1e9) ..
    '","message_ts":"2026-11-23T10:00:00Z","action":"search","sender_id":"bench.example.org","total_count":1},' ..
    '"message":{"transaction_id":"t","search_request":[{"reference_id":"r","timestamp":"2026-11-23T10:00:00Z",' ..
    '"search_criteria":{"reg_type":"ns:org:RegistryType:Civil","query_type":"idtype-value",' ..
    '"query":{"type":"BRN","value":"' .. value .. '"}}}]}}'
  return wrk.format(nil, nil, nil, body)
end

-- wrk script: POST pre-signed DCI sync searches from BENCH_BODIES (one JSON body per line,
-- each with its own message_id: the bridge accepts a message id once) with a bearer token.
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[((counter - 1) % #bodies) + 1])
end

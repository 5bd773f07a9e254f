-- wrk script for bench/transfer_bench.py: JWT-authenticated transfers with idempotency keys.
-- Reads WALLET_BENCH_ACCOUNTS (a Lua file returning {ids = {...}, tokens = {[id] = "..."}})
-- and WALLET_BENCH_HOT ("1": every transfer pays ids[1]). Prints one JSON line at the end:
-- {"requests": n, "created": n, "errors": {"status": n}, "p50_us": x, "p99_us": y}.

local accounts = dofile(os.getenv("WALLET_BENCH_ACCOUNTS"))
local ids, tokens = accounts.ids, accounts.tokens
local hot = os.getenv("WALLET_BENCH_HOT") == "1"
local threads = {}
local next_thread = 0

function setup(thread)
    next_thread = next_thread + 1
    thread:set("thread_id", next_thread)
    table.insert(threads, thread)
end

function init(args)
    math.randomseed(os.time() * 1000 + thread_id)
    run_id = string.format("%x%x", os.time(), math.random(0, 0xffffff))
    sent = 0
    statuses = {}
end

function request()
    local a, b
    if hot then
        a, b = ids[math.random(2, #ids)], ids[1]
    else
        a = ids[math.random(#ids)]
        repeat b = ids[math.random(#ids)] until b ~= a
    end
    sent = sent + 1
    local body = string.format('{"to_user_id": %d, "amount": "%d.00"}', b, math.random(1, 100))
    local headers = {
        ["Authorization"] = "Bearer " .. tokens[a],
        ["Content-Type"] = "application/json",
        ["Idempotency-Key"] = string.format("%s-%d-%d", run_id, thread_id, sent),
    }
    return wrk.format("POST", "/api/v1/transactions/transfer", headers, body)
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local created, errors, parts = 0, {}, {}
    for _, thread in ipairs(threads) do
        for status, n in pairs(thread:get("statuses")) do
            if status == 201 then
                created = created + n
            else
                errors[tostring(status)] = (errors[tostring(status)] or 0) + n
            end
        end
    end
    for status, n in pairs(errors) do
        table.insert(parts, string.format('"%s": %d', status, n))
    end
    local socket = summary.errors
    for _, kind in ipairs({"connect", "read", "write", "timeout"}) do
        if socket[kind] > 0 then
            table.insert(parts, string.format('"socket_%s": %d', kind, socket[kind]))
        end
    end
    io.write(string.format(
        '{"requests": %d, "created": %d, "errors": {%s}, "p50_us": %d, "p99_us": %d}\n',
        summary.requests, created, table.concat(parts, ", "),
        latency:percentile(50), latency:percentile(99)))
end

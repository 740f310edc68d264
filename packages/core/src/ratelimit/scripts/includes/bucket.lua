--[[
  One GCRA bucket, shared by every script (the same arithmetic as ../../gcra.ts; keep the two in step,
  redis.test.ts checks them against each other on random sequences).

  The bucket key holds "<tat>" or "<tat> <flying> <hold>": the TAT (theoretical arrival time of the
  next call) in ms on the Redis clock, as a decimal; how many leased grants are not settled yet; and,
  once a grant emptied the bucket, the time until which it stays closed while any of them is
  unanswered (0: not held). Absent means a full bucket.
]]

-- `arg`: now in ms, for tests only. Empty: Redis TIME, so replicas with skewed clocks agree.
local function clock(arg)
  if arg ~= nil and arg ~= '' then
    return tonumber(arg)
  end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
end

-- %.17g round-trips a double exactly (tostring keeps only 14 digits, i.e. 10 µs at today's epoch).
local function str(x)
  return string.format('%.17g', x)
end

-- The stored bucket: tat, flying, hold, and the raw value (nil when absent). A hold past its time is
-- gone, with the count: the replicas that held it died, or lost their settles.
local function loadBucket(key, now)
  local stored = redis.call('GET', key)
  if not stored then
    return -math.huge, 0, 0, nil
  end
  local a, b, c = string.match(stored, '^(%S+) (%S+) (%S+)$')
  if not a then
    return tonumber(stored), 0, 0, stored
  end
  local flying, hold = tonumber(b), tonumber(c)
  if hold > 0 and hold <= now then
    return tonumber(a), 0, 0, stored
  end
  return tonumber(a), flying, hold, stored
end

-- When the next grant is possible, a hold included.
local function effective(tat, hold)
  if hold > 0 then
    return math.max(tat, hold)
  end
  return tat
end

-- When the next call may arrive upstream (gcra.ts: earliest): a leased call still flying may reach
-- the upstream at any moment before its answer, so each counts as arriving now until settled.
local function earliest(tat, flying, hold, now, t)
  return math.max(effective(tat, hold), now + flying * t)
end

-- At its TAT a bucket is full, which is what an absent key means: expire it then (plus a margin for
-- clock steps), so idle buckets vanish; one with calls flying stays a minute at least.
local function store(key, now, tat, flying, hold)
  local value = str(tat)
  local until_ = effective(tat, hold)
  if flying > 0 or hold > 0 then
    value = value .. ' ' .. flying .. ' ' .. str(hold)
    until_ = math.max(until_, now + 60000)
  end
  redis.call('SET', key, value, 'PX', math.max(1, math.ceil(until_ - now) + 1000))
  return value
end

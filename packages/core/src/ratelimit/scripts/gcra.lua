--[[
  GCRA for one bucket, atomic: the same arithmetic as ../gcra.ts (keep the two in step; redis.test.ts
  checks them against each other on random sequences). One call is one decision: one round trip.

  Input:
    KEYS[1]  the bucket: "<tat>" or "<tat> <flying> <hold>". The TAT (theoretical arrival time of
             the next call) in ms on the Redis clock, as a decimal; how many leased grants are not
             settled yet; and, once a grant emptied the bucket, the time until which it stays closed
             while any of them is unanswered (0: not held). Absent means a full bucket.
    KEYS[2]  the bucket's turn queue: a sorted set of replicas waiting for a grant, each scored by the
             arrival (Redis clock) of its oldest waiting op. Same hash slot as KEYS[1] (a hash tag).

    ARGV[1]  op: 'acquire' | 'settle' | 'pause' | 'peek'
    ARGV[2]  ratePerSec
    ARGV[3]  burst
    ARGV[4]  ms: the pause (op 'pause') or the lease (op 'acquire'; 0 = none)
    ARGV[5]  now in ms, for tests only. Empty: Redis TIME, so replicas with skewed clocks agree.
    ARGV[6]  op 'settle': the grant's mark if it was leased (it lands), or ''
    ARGV[7]  op 'settle': a channel to PUBLISH "<ms until the next grant> <replica whose turn> <key>"
             on, or '' for none
    ARGV[8]  ops 'acquire' and 'settle': the asking replica's id, or '' (then no turn queue)
    ARGV[9]  ops 'acquire' and 'settle': how long the replica's oldest op has waited, in ms, or ''
             (settle: the replica has nothing waiting)
    ARGV[10] op 'acquire': the turn grace in ms (below)

  Turns: a grant that empties the bucket goes to the replica holding the fleet's oldest waiting op, so
  replicas are served in their ops' arrival order. A younger replica asking first is denied and queued;
  if the oldest does not come within the grace after the bucket opened (it died, or has nothing left),
  the younger takes the slot and the absent one leaves the queue (it re-queues on its next denial).

  Output (a Lua number in a reply is truncated to an integer, so fractional values are strings):
    acquire  {1, remaining, settleAfterMs, mark, baseTat}  granted; mark: the hold when the grant
             emptied the bucket, 'flying' when leased, else baseTat
             {0, 0, retryAfterMs, stored, ''}    denied (bucket unchanged)
    settle   the stored value
    pause    the stored value
    peek     {tokens, cooldownMs}
]]
local key = KEYS[1]
local queue = KEYS[2]
local op = ARGV[1]
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])

local now
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
end

-- %.17g round-trips a double exactly (tostring keeps only 14 digits, i.e. 10 µs at today's epoch).
local function str(x)
  return string.format('%.17g', x)
end

local stored = redis.call('GET', key)
local tat = -math.huge
-- Leased grants not yet settled, and the time the bucket is held closed until (0: not held). A hold
-- past its time is gone, with the count: the replicas that held it died, or lost their settles.
local flying = 0
local hold = 0
if stored then
  local a, b, c = string.match(stored, '^(%S+) (%S+) (%S+)$')
  if a then
    tat = tonumber(a)
    flying = tonumber(b)
    hold = tonumber(c)
    if hold > 0 and hold <= now then
      flying = 0
      hold = 0
    end
  else
    tat = tonumber(stored)
  end
end

local t = 1000 / rate
local tolerance = (burst - 1) * t

-- When the next grant is possible, a hold included.
local function effective(at, held)
  if held > 0 then
    return math.max(at, held)
  end
  return at
end

-- At its TAT a bucket is full, which is what an absent key means: expire it then (plus a margin for
-- clock steps), so idle buckets vanish; one with calls flying stays a minute at least.
local function store(newTat, newFlying, newHold)
  local value = str(newTat)
  local until_ = effective(newTat, newHold)
  if newFlying > 0 or newHold > 0 then
    value = value .. ' ' .. newFlying .. ' ' .. str(newHold)
    until_ = math.max(until_, now + 60000)
  end
  local ttl = math.max(1, math.ceil(until_ - now) + 1000)
  redis.call('SET', key, value, 'PX', ttl)
  return value
end

local replica = ARGV[8] or ''
local waited = tonumber(ARGV[9] or '')

-- The queue's replicas are all waiting for the same bucket; an abandoned queue expires with it.
local function enqueue(score)
  redis.call('ZADD', queue, score, replica)
  redis.call('PEXPIRE', queue, math.max(60000, math.ceil(tat - now) + 1000))
end

-- The replica whose turn it is, other than `replica`: {id, score} or nil.
local function head()
  local first = redis.call('ZRANGE', queue, 0, 1, 'WITHSCORES')
  if first[1] ~= nil and first[1] ~= replica then
    return {first[1], tonumber(first[2])}
  end
  if first[3] ~= nil then
    return {first[3], tonumber(first[4])}
  end
  return nil
end

if op == 'acquire' then
  local start = math.max(effective(tat, hold), now)
  local ahead = start - now
  local mine = now - (waited or 0)
  if ahead > tolerance then
    if replica == '' then
      return {0, 0, str(ahead - tolerance), stored or '', ''}
    end
    enqueue(mine)
    local first = head()
    local grace = 0
    if first ~= nil and first[2] < mine then
      grace = tonumber(ARGV[10])
    end
    return {0, 0, str(ahead - tolerance + grace), stored or '', ''}
  end
  local nextTat = start + t
  local remaining = math.floor((burst * t - (nextTat - now)) / t + 1e-9)
  if replica ~= '' then
    local first = head()
    if remaining == 0 and first ~= nil and first[2] < mine then
      -- The last token is an older replica's turn, for a grace after the bucket opened.
      local openedAt = effective(tat, hold) - tolerance
      local until_ = openedAt + tonumber(ARGV[10])
      if now < until_ then
        enqueue(mine)
        return {0, 0, str(until_ - now), stored or '', ''}
      end
      redis.call('ZREM', queue, first[1])
    end
    redis.call('ZREM', queue, replica)
  end
  local leaseMs = tonumber(ARGV[4])
  if leaseMs > 0 then
    -- A leased grant flies until settled. One that empties the bucket holds it closed until every
    -- flying call is answered (see Lease): an earlier one may still arrive late.
    if remaining == 0 then
      local held = now + leaseMs
      store(nextTat, flying + 1, held)
      return {1, remaining, str(nextTat - now - t), str(held), str(nextTat)}
    end
    store(nextTat, flying + 1, hold)
    return {1, remaining, str(nextTat - now - t), 'flying', str(nextTat)}
  end
  store(nextTat, flying, hold)
  return {1, remaining, str(nextTat - now - t), str(nextTat), str(nextTat)}
elseif op == 'settle' then
  -- The call's arrival upstream was no later than its answer, which is before now, and the calls
  -- still flying may all arrive after it: the upstream's next arrival is due no later than one
  -- interval from now per call (SPEC §7: spacing from the answer). A bucket already further on (a
  -- queue of grants, a pause stored meanwhile) absorbs that. A leased call lands: the last one to
  -- land lifts the hold.
  local newFlying = flying
  local newHold = hold
  if ARGV[6] ~= nil and ARGV[6] ~= '' and flying > 0 then
    newFlying = flying - 1
    if newFlying == 0 then
      newHold = 0
    end
  end
  local newTat
  if not stored then
    newTat = now + t
  else
    newTat = math.max(tat, now + t * (1 + newFlying))
  end
  local result = store(newTat, newFlying, newHold)
  -- The replica stays in the queue while it has ops waiting (scored by the oldest), else leaves it.
  local next = ''
  if replica ~= '' then
    if waited ~= nil then
      enqueue(now - waited)
    else
      redis.call('ZREM', queue, replica)
    end
    local first = redis.call('ZRANGE', queue, 0, 0)
    if first[1] ~= nil then
      next = first[1]
    end
  end
  -- Waiting replicas come back when the next grant is possible, the one whose turn it is first,
  -- instead of polling for it.
  if ARGV[7] ~= nil and ARGV[7] ~= '' then
    local opens = effective(newTat, newHold) - now - tolerance
    redis.call('PUBLISH', ARGV[7], str(math.max(0, opens)) .. ' ' .. next .. ' ' .. key)
  end
  return result
elseif op == 'pause' then
  -- A 429 means the upstream's bucket is empty: model it as empty after the pause.
  return store(math.max(tat, now + tonumber(ARGV[4]) + tolerance), flying, hold)
elseif op == 'peek' then
  local ahead = math.max(0, effective(tat, hold) - now)
  return {math.max(0, math.floor((burst * t - ahead) / t + 1e-9)), str(math.max(0, ahead - tolerance))}
end
return redis.error_reply('gcra.lua: unknown op ' .. tostring(op))

--[[
  The call a grant allowed was answered. Its arrival upstream was no later than its answer, which is
  before now, and the calls still flying may all arrive after it: the upstream's next arrival is due
  no later than one interval from now per call (SPEC §7: spacing from the answer). A bucket already
  further on (a queue of grants, a pause stored meanwhile) absorbs that. A leased call lands: the
  last one to land lifts the hold.

    KEYS[1] the bucket   KEYS[2] its turn queue   KEYS[3] its pace
    ARGV[1] ratePerSec   ARGV[2] burst
    ARGV[3] now in ms, or '' (tests only)
    ARGV[4] '1' when the grant was leased (it lands), else ''
    ARGV[5] a channel to PUBLISH "<ms until the next grant> <replica whose turn> <key>" on, or ''
    ARGV[6] the settling replica's id, or '' (then no turn queue)
    ARGV[7] how long its oldest op still waiting has waited, in ms, or '' (nothing waits: it leaves
            the queue)
    ARGV[8] the pace parameters, or '' (a fixed rate): the learned rate replaces ARGV[1]

  Returns {stored value, ms until the bucket grants again}.
]]
--- @include "includes/bucket"
--- @include "includes/turns"
--- @include "includes/pace"

local key, queue = KEYS[1], KEYS[2]
local burst = tonumber(ARGV[2])
local rate = paceRateOf(KEYS[3], paceParams(ARGV[8]), tonumber(ARGV[1]))
local now = clock(ARGV[3])
local replica = ARGV[6] or ''
local waited = tonumber(ARGV[7] or '')

local tat, flying, hold, stored = loadBucket(key, now)
local t = 1000 / rate
local tolerance = (burst - 1) * t

if ARGV[4] == '1' and flying > 0 then
  flying = flying - 1
  if flying == 0 then
    hold = 0
  end
end
if not stored then
  tat = now + t
else
  tat = math.max(tat, now + t * (1 + flying))
end
local result = store(key, now, tat, flying, hold)

-- The replica stays in the queue while it has ops waiting (scored by the oldest), else leaves it.
local next = ''
if replica ~= '' then
  if waited ~= nil then
    enqueue(queue, replica, now - waited, now, tat)
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
local opens = math.max(0, effective(tat, hold) - now - tolerance)
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  redis.call('PUBLISH', ARGV[5], str(opens) .. ' ' .. next .. ' ' .. key)
end
return {result, str(opens)}

--[[
  Calls the upstream counts on this bucket that took no grant of their own (the ops of a batch, when
  the upstream counts them against the single-call budget too): their tokens, into debt if need be.

    KEYS[1] the bucket   KEYS[2] its pace
    ARGV[1] ratePerSec   ARGV[2] burst   ARGV[3] how many calls   ARGV[4] now in ms, or '' (tests)
    ARGV[5] the pace parameters, or '' (a fixed rate): the learned rate replaces ARGV[1]

  Returns the stored value.
]]
--- @include "includes/bucket"
--- @include "includes/pace"

local key = KEYS[1]
local rate = paceRateOf(KEYS[2], paceParams(ARGV[5]), tonumber(ARGV[1]))
local count = tonumber(ARGV[3])
local now = clock(ARGV[4])
local tat, flying, hold = loadBucket(key, now)
return store(key, now, math.max(tat, now) + count * 1000 / rate, flying, hold)

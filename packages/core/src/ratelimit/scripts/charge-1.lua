--[[
  Calls the upstream counts on this bucket that took no grant of their own (the ops of a batch, when
  the upstream counts them against the single-call budget too): their tokens, into debt if need be.

    KEYS[1] the bucket
    ARGV[1] ratePerSec   ARGV[2] burst   ARGV[3] how many calls   ARGV[4] now in ms, or '' (tests)

  Returns the stored value.
]]
--- @include "includes/bucket"

local key = KEYS[1]
local rate, count = tonumber(ARGV[1]), tonumber(ARGV[3])
local now = clock(ARGV[4])
local tat, flying, hold = loadBucket(key, now)
return store(key, now, math.max(tat, now) + count * 1000 / rate, flying, hold)

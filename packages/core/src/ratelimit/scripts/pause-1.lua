--[[
  The upstream answered 429: its bucket is empty. Modelled exactly: empty after the pause.

    KEYS[1] the bucket
    ARGV[1] ratePerSec   ARGV[2] burst   ARGV[3] the pause in ms   ARGV[4] now in ms, or '' (tests)

  Returns the stored value.
]]
--- @include "includes/bucket"

local key = KEYS[1]
local rate, burst, ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock(ARGV[4])
local tat, flying, hold = loadBucket(key, now)
return store(key, now, math.max(tat, now + ms + (burst - 1) * 1000 / rate), flying, hold)

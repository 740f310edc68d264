--[[
  Read-only: whole tokens left and how long until the next grant, for the status page.

    KEYS[1] the bucket
    ARGV[1] ratePerSec   ARGV[2] burst   ARGV[3] now in ms, or '' (tests)

  Returns {tokens, cooldownMs}.
]]
--- @include "includes/bucket"

local key = KEYS[1]
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock(ARGV[3])
local tat, _, hold = loadBucket(key, now)
local t = 1000 / rate
local ahead = math.max(0, effective(tat, hold) - now)
return {math.max(0, math.floor((burst * t - ahead) / t + 1e-9)), str(math.max(0, ahead - (burst - 1) * t))}

--[[
  Read-only: whole tokens left and how long until the next grant, for the status page.

    KEYS[1] the bucket   KEYS[2] its pace
    ARGV[1] ratePerSec   ARGV[2] burst   ARGV[3] now in ms, or '' (tests)
    ARGV[4] the pace parameters, or '' (a fixed rate): the learned rate replaces ARGV[1]

  Returns {tokens, cooldownMs}.
]]
--- @include "includes/bucket"
--- @include "includes/pace"

local key = KEYS[1]
local rate = paceRateOf(KEYS[2], paceParams(ARGV[4]), tonumber(ARGV[1]))
local burst = tonumber(ARGV[2])
local now = clock(ARGV[3])
local tat, flying, hold = loadBucket(key, now)
local t = 1000 / rate
local ahead = math.max(0, earliest(tat, flying, hold, now, t) - now)
return {math.max(0, math.floor((burst * t - ahead) / t + 1e-9)), str(math.max(0, ahead - (burst - 1) * t))}

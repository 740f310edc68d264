--[[
  The upstream answered 429: its bucket is empty. Modelled exactly: empty after the pause.

    KEYS[1] the bucket   KEYS[2] its pace
    ARGV[1] ratePerSec   ARGV[2] burst   ARGV[3] the pause in ms   ARGV[4] now in ms, or '' (tests)
    ARGV[5] the pace parameters, or '' (a fixed rate)

  Returns the stored value; when paced, {stored value, rate, adjusted (-1 when this 429 lowered the
  rate, else 0)}: a 429 is a congestion event, its pause the Retry-After.
]]
--- @include "includes/bucket"
--- @include "includes/pace"

local key = KEYS[1]
local rate, burst, ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock(ARGV[4])
local p = paceParams(ARGV[5])
local adjusted = 0
if p ~= nil then
  local pace = paceLoad(KEYS[2], p, now)
  adjusted = paceApply(pace, now, p, 'congestion', ms)
  paceStore(KEYS[2], pace)
  rate = pace.rate
end
local tat, flying, hold = loadBucket(key, now)
local stored = store(key, now, math.max(tat, now + ms + (burst - 1) * 1000 / rate), flying, hold)
if p == nil then
  return stored
end
return {stored, str(rate), adjusted}

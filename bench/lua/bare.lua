-- The ceiling: GET /const on bench/bare_app.py (a FastAPI endpoint returning a constant).
local c = require("common")

c.install(function()
  return wrk.format("GET", "/const")
end)

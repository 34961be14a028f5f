-- SOAP InquireContribution: a fresh WS-Security UsernameToken (PasswordDigest) and a random
-- seeded person in every request. See common.lua for the settings.
local c = require("common")

c.install(function()
  local body = "<sso:InquireContribution><sso:nationalId>" .. c.random_person()
    .. "</sso:nationalId><sso:storeId>S-0001</sso:storeId><sso:terminalId>T-01"
    .. "</sso:terminalId></sso:InquireContribution>"
  return wrk.format("POST", "/soap/v1", c.SOAP_HEADERS, c.soap_envelope(c.username, c.password,
    body))
end)

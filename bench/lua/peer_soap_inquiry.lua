-- The spyne peer's SOAP InquireContribution (bench/peer/spyne_app.py): a random seeded person in
-- every request, no WS-Security (the peer has no admission). See common.lua for the settings.
local c = require("common")

local headers = { ["Content-Type"] = "text/xml; charset=utf-8",
  ["SOAPAction"] = '"InquireContribution"' }

c.install(function()
  local body = '<?xml version="1.0" encoding="utf-8"?>'
    .. '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    .. ' xmlns:p="urn:sso:peer:v1"><soapenv:Body><p:InquireContribution>'
    .. "<p:nationalId>" .. c.random_person() .. "</p:nationalId>"
    .. "<p:storeId>S-0001</p:storeId><p:terminalId>T-01</p:terminalId>"
    .. "</p:InquireContribution></soapenv:Body></soapenv:Envelope>"
  return wrk.format("POST", "/soap", headers, body)
end)

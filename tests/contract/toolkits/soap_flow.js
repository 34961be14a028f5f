// node-soap as a partner uses it: a client made from the served WSDL, a WS-Security
// UsernameToken with PasswordDigest, and a counter's whole flow on one port of the service.
//
// Usage: node soap_flow.js CONFIG_JSON  with {wsdl, port, username, password, s39, s40,
//        returned, txn}
// Prints one JSON document: what each call answered, or the GatewayFault code it met.

'use strict';

const soap = require('soap');

async function main() {
  const config = JSON.parse(process.argv[2]);
  const soap12 = config.port === 'ContributionSoap12';
  // node-soap speaks SOAP 1.2 (envelope and media type) only when told to.
  const client = await soap.createClientAsync(config.wsdl, { forceSoap12Headers: soap12 });
  client.setSecurity(
    new soap.WSSecurity(config.username, config.password, { passwordType: 'PasswordDigest' }),
  );
  const port = client.ContributionService[config.port];
  const call = (operation, args) =>
    new Promise((resolve, reject) => {
      port[operation](args, (error, answer) => (error ? reject(error) : resolve(answer)));
    });
  const faultCode = async (operation, args) => {
    try {
      await call(operation, args);
      return null;
    } catch (error) {
      const fault = error.root && error.root.Envelope.Body.Fault;
      const detail = fault && (fault.detail || fault.Detail);
      if (!detail) throw error;
      return detail.GatewayFault.code;
    }
  };

  const s39 = (await call('InquireContribution', { nationalId: config.s39, terminalId: 'T-1' }))
    .result;
  const s40 = (await call('InquireContribution', { nationalId: config.s40 })).result;
  // Contract 1.1: eligibility and previousMemberships, appended and optional.
  const returned = (await call('InquireContribution', { nationalId: config.returned })).result;
  const payment = {
    partnerTxnId: config.txn,
    nationalId: config.s39,
    section: 39,
    months: { month: s39.defaultMonths.month },
    amount: s39.defaultTotal,
    storeId: 'S-1',
    terminalId: 'T-1',
    businessDate: '2024-06-10',
    paidAt: '2024-06-10T09:29:41+07:00',
  };
  const confirmed = (await call('ConfirmPayment', payment)).result;
  const status = (await call('GetPaymentStatus', { partnerTxnId: config.txn })).result;
  const cancelled = (await call('CancelPayment', { partnerTxnId: config.txn, reason: 'mistake' }))
    .result;
  const after = (await call('GetPaymentStatus', { partnerTxnId: config.txn })).result;
  const faults = {
    // The same confirm once its payment was cancelled: the receipt is void.
    confirmAgain: await faultCode('ConfirmPayment', payment),
    unknownPerson: await faultCode('InquireContribution', { nationalId: '1111111111111' }),
  };
  process.stdout.write(
    JSON.stringify({ s39, s40, returned, confirmed, status, cancelled, after, faults }, null, 1),
  );
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  if (error.body) process.stderr.write(`${error.body}\n`);
  process.exit(1);
});

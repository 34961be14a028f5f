// A partner's JAX-WS client, written against the classes `wsimport` (default options) makes from
// the served WSDL: the test compiles it with them and runs it against a live gateway.
//
// Usage: java CounterClient USERNAME PASSWORD NATIONAL_ID...
// For each ID it calls InquireContribution and prints the answer as key=value lines (an absent
// optional field prints as "-"), then one GetPaymentStatus of a transaction never sent, then an
// inquiry of an unknown person, which must arrive as the declared fault. Every
// request carries a WS-Security UsernameToken with a PasswordDigest, as a counter would send it.

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import javax.xml.namespace.QName;
import javax.xml.soap.SOAPElement;
import javax.xml.soap.SOAPEnvelope;
import javax.xml.soap.SOAPHeader;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.Handler;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;
import sso.contribution.v1.ContributionPortType;
import sso.contribution.v1.ContributionService;
import sso.contribution.v1.GatewayFault_Exception;
import sso.contribution.v1.InquiryResult;
import sso.contribution.v1.PayableMonth;
import sso.contribution.v1.PreviousMembership;
import sso.contribution.v1.Section39Eligibility;
import sso.contribution.v1.StatusResult;

public final class CounterClient {
    static final String WSSE =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    static final String WSU =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    static final String PROFILE =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0";

    /** Adds a UsernameToken with PasswordDigest, Nonce and Created to every outgoing message. */
    static final class UsernameToken implements SOAPHandler<SOAPMessageContext> {
        private final String username;
        private final String password;
        private final SecureRandom random = new SecureRandom();

        UsernameToken(String username, String password) {
            this.username = username;
            this.password = password;
        }

        @Override
        public boolean handleMessage(SOAPMessageContext context) {
            if (!(Boolean) context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY)) {
                return true;
            }
            try {
                byte[] nonce = new byte[16];
                random.nextBytes(nonce);
                String created = Instant.now().toString();
                MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
                sha1.update(nonce);
                sha1.update(created.getBytes(StandardCharsets.UTF_8));
                sha1.update(password.getBytes(StandardCharsets.UTF_8));
                String digest = Base64.getEncoder().encodeToString(sha1.digest());

                SOAPEnvelope envelope = context.getMessage().getSOAPPart().getEnvelope();
                SOAPHeader header = envelope.getHeader();
                if (header == null) {
                    header = envelope.addHeader();
                }
                SOAPElement token = header.addChildElement("Security", "wsse", WSSE)
                    .addChildElement("UsernameToken", "wsse");
                token.addChildElement("Username", "wsse").addTextNode(username);
                token.addChildElement("Password", "wsse")
                    .addTextNode(digest)
                    .setAttribute("Type", PROFILE + "#PasswordDigest");
                token.addChildElement("Nonce", "wsse")
                    .addTextNode(Base64.getEncoder().encodeToString(nonce));
                token.addChildElement("Created", "wsu", WSU).addTextNode(created);
                context.getMessage().saveChanges();
                return true;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public boolean handleFault(SOAPMessageContext context) {
            return true;
        }

        @Override
        public void close(MessageContext context) {}

        @Override
        public Set<QName> getHeaders() {
            return Collections.emptySet();
        }
    }

    static String text(Object value) {
        return value == null ? "-" : value.toString();
    }

    public static void main(String[] args) throws Exception {
        ContributionPortType port = new ContributionService().getContributionSoap11();
        @SuppressWarnings("rawtypes")
        List<Handler> chain = ((BindingProvider) port).getBinding().getHandlerChain();
        chain.add(new UsernameToken(args[0], args[1]));
        ((BindingProvider) port).getBinding().setHandlerChain(chain);

        for (int i = 2; i < args.length; i++) {
            InquiryResult result = port.inquireContribution(args[i], null, null, "T-JAVA", null);
            String p = result.getNationalId() + ".";
            System.out.println(p + "familyName=" + result.getFamilyName());
            System.out.println(p + "section=" + result.getSection());
            System.out.println(p + "option=" + text(result.getOption()));
            System.out.println(p + "effectiveDate=" + text(result.getEffectiveDate()));
            System.out.println(p + "returnCode=" + text(result.getReturnCode()));
            System.out.println(p + "paymentPeriod=" + text(result.getPaymentPeriod()));
            System.out.println(p + "paymentMethod=" + text(result.getPaymentMethod()));
            System.out.println(p + "lastPaymentDate=" + text(result.getLastPaymentDate()));
            System.out.println(p + "lastPaymentAmount=" + text(result.getLastPaymentAmount()));
            System.out.println(p + "amountDue=" + text(result.getAmountDue()));
            for (PayableMonth month : result.getPayableMonths().getPayableMonth()) {
                System.out.println(p + "month=" + month.getMonth() + " " + month.getAmount()
                    + " " + text(month.getDueDate()) + " " + text(month.getGovernmentShare()));
            }
            System.out.println(p + "defaultTotal=" + result.getDefaultTotal());
            System.out.println(p + "asOf=" + result.getAsOf());
            // Contract 1.1: appended, optional (null when absent).
            Section39Eligibility eligibility = result.getEligibility();
            System.out.println(p + "eligibility=" + (eligibility == null ? "-" : eligibility.value()));
            if (result.getPreviousMemberships() != null) {
                for (PreviousMembership m : result.getPreviousMemberships().getMembership()) {
                    System.out.println(p + "previous=" + m.getSection() + " " + m.getCoverageStart()
                        + " " + m.getEndedMonth() + " " + text(m.getEndReason()) + " "
                        + text(m.getOption()));
                }
            }
        }
        StatusResult status = port.getPaymentStatus("never-sent", null, null, null);
        System.out.println("status=" + status.getState().value() + " " + text(status.getReceiptNo()));
        try {
            port.inquireContribution("1111111111111", null, null, null, null);
            System.out.println("fault=none");
        } catch (GatewayFault_Exception fault) {
            // The declared fault: its detail is the GatewayFault element, read by JAXB.
            System.out.println("fault=" + (fault.getFaultInfo() != null));
        }
    }
}

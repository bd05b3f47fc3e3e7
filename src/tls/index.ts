/** TLS material for the fleet: the self-signed certificate and the checks on user-supplied files. */
export {ensureSelfSigned, ensureTls, haproxyPem, readCertFiles, RENEW_WITHIN_DAYS, selfSignedPaths, type TlsMaterial} from './ensure.js'
export {certInfo, checkKeyPair, splitPemCerts, uncoveredNames} from './inspect.js'
export {certNames, createSelfSignedCert, DEFAULT_DAYS, isoDay, MIN_RSA_BITS, type SelfSignedCert, type SelfSignedOptions} from './self-signed.js'
export {ensureSiteCerts, siteCertNames} from './sites.js'

package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
)

// sanSet is the set of subject alternative names the server certificate
// must carry.
type sanSet struct {
	dns []string // lower case, without trailing dot
	ips []net.IP // IPv4 in 4-byte form
}

// serverNames returns the required SANs: localhost, 127.0.0.1 and ::1,
// plus hostnames. Empty entries are skipped; a "host:port" or "[v6]:port"
// entry contributes its host.
func serverNames(hostnames []string) (sanSet, error) {
	var s sanSet
	s.addDNS("localhost")
	s.addIP(net.IPv4(127, 0, 0, 1))
	s.addIP(net.IPv6loopback)
	for _, h := range hostnames {
		host := strings.TrimSpace(h)
		if host == "" {
			continue
		}
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
		if ip := net.ParseIP(host); ip != nil {
			s.addIP(ip)
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(host, "."))
		if !validDNSName(name) {
			return sanSet{}, fmt.Errorf("pki: invalid hostname %q", h)
		}
		s.addDNS(name)
	}
	return s, nil
}

func (s *sanSet) addDNS(name string) {
	if !slices.Contains(s.dns, name) {
		s.dns = append(s.dns, name)
	}
}

func (s *sanSet) addIP(ip net.IP) {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	if !slices.ContainsFunc(s.ips, ip.Equal) {
		s.ips = append(s.ips, ip)
	}
}

// missingFrom returns the first required name that cert does not list as a
// SAN, or "" if it lists them all. DNS names compare case-insensitively.
func (s sanSet) missingFrom(cert *x509.Certificate) string {
	for _, name := range s.dns {
		if !slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
			return "DNS:" + name
		}
	}
	for _, ip := range s.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return "IP:" + ip.String()
		}
	}
	return ""
}

// validDNSName reports whether name is a syntactically valid DNS name for a
// certificate: dot-separated labels of letters, digits, '-' and '_', each
// 1 to 63 bytes, with an optional leading "*" label.
func validDNSName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for i, label := range labels {
		if label == "*" && i == 0 && len(labels) > 2 {
			continue
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

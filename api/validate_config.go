package api

import "strings"

// Checks of ConfigMaps and Secrets.

func (v *validator) configKey(p path, k string) {
	switch {
	case len(k) > MaxConfigKeyLength:
		v.add(TooLong(p.String(), MaxConfigKeyLength, "characters"))
	case !configKeyRE.MatchString(k):
		v.add(Invalid(p.String(), k, "must consist of letters, digits, '-', '_' and '.'"))
	case k == "." || k == ".." || strings.HasPrefix(k, ".."):
		v.add(Invalid(p.String(), k, "must not be '.' or start with '..'"))
	}
}

func (v *validator) configMap(c *ConfigMap) {
	total := 0
	for _, k := range sortedKeys(c.Data) {
		v.configKey(path("data").key(k), k)
		total += len(c.Data[k])
	}
	for _, k := range sortedKeys(c.BinaryData) {
		kp := path("binaryData").key(k)
		v.configKey(kp, k)
		if _, dup := c.Data[k]; dup {
			v.add(Duplicate(kp.String(), k))
		}
		total += len(c.BinaryData[k])
	}
	if total > MaxConfigDataBytes {
		v.add(TooLong("data", MaxConfigDataBytes, "bytes in total"))
	}
}

func (v *validator) secret(s *Secret) {
	total := 0
	for _, k := range sortedKeys(s.Data) {
		v.configKey(path("data").key(k), k)
		total += len(s.Data[k])
	}
	for _, k := range sortedKeys(s.StringData) {
		v.configKey(path("stringData").key(k), k)
		if _, merged := s.Data[k]; !merged {
			total += len(s.StringData[k])
		}
	}
	if total > MaxConfigDataBytes {
		v.add(TooLong("data", MaxConfigDataBytes, "bytes in total"))
	}
	if len(s.Type) > DNS1123SubdomainMaxLength {
		v.add(TooLong("type", DNS1123SubdomainMaxLength, "characters"))
	}
}

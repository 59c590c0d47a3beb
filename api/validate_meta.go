package api

// Checks of object metadata, shared by every kind (templates use
// objectMetaCommon).

// meta checks the metadata of a top-level object.
func (v *validator) meta(m *ObjectMeta, namespaced bool, check nameCheck) {
	p := path("metadata")
	switch {
	case m.Name != "":
		check(v, p.child("name"), m.Name)
	case m.GenerateName != "":
		// A prefix: it must become a valid name once a suffix is added.
		check(v, p.child("generateName"), m.GenerateName+"x")
	default:
		v.add(Required("metadata.name", "name or generateName is required"))
	}
	if namespaced {
		if m.Namespace == "" {
			v.add(Required("metadata.namespace", ""))
		} else {
			nameDNSLabel(v, p.child("namespace"), m.Namespace)
		}
	} else if m.Namespace != "" {
		v.add(Forbidden("metadata.namespace", "not allowed on a cluster-scoped object"))
	}
	v.objectMetaCommon(p, m)
	for i, r := range m.OwnerReferences {
		rp := p.child("ownerReferences").index(i)
		for _, f := range []struct{ name, val string }{{"apiVersion", r.APIVersion}, {"kind", r.Kind}, {"name", r.Name}, {"uid", r.UID}} {
			if f.val == "" {
				v.add(Required(rp.child(f.name).String(), ""))
			}
		}
	}
	if m.Generation < 0 {
		v.nonNegative(p.child("generation"), m.Generation)
	}
	if g := m.DeletionGracePeriodSeconds; g != nil {
		v.nonNegative(p.child("deletionGracePeriodSeconds"), *g)
	}
}

// objectMetaCommon checks labels and annotations, for objects and templates.
func (v *validator) objectMetaCommon(p path, m *ObjectMeta) {
	v.labels(p.child("labels"), m.Labels)
	total := 0
	for _, k := range sortedKeys(m.Annotations) {
		v.labelKey(p.child("annotations").key(k), k)
		total += len(k) + len(m.Annotations[k])
	}
	if total > MaxAnnotationsBytes {
		v.add(TooLong(p.child("annotations").String(), MaxAnnotationsBytes, "bytes in total"))
	}
}

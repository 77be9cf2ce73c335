package config

import (
	"reflect"
	"testing"
)

// Changing any one field of an entity makes Equal false: a field added to
// Agent, LLM or Tool without a comparison fails here.
func TestEqualCoversEveryField(t *testing.T) {
	check := func(t *testing.T, zero any, equal func(a, b reflect.Value) bool) {
		typ := reflect.TypeOf(zero)
		for i := range typ.NumField() {
			if typ.Field(i).Tag.Get("legacy") != "" {
				continue // an old spelling, empty once normalised
			}
			a, b := reflect.New(typ).Elem(), reflect.New(typ).Elem()
			f := b.Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString("x")
			case reflect.Int, reflect.Int64:
				f.SetInt(7)
			case reflect.Bool:
				f.SetBool(true)
			case reflect.Slice:
				f.Set(reflect.Append(f, reflect.ValueOf("x")))
			case reflect.Map:
				f.Set(reflect.MakeMap(f.Type()))
				f.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v"))
			case reflect.Pointer:
				f.Set(reflect.New(f.Type().Elem()))
			default:
				t.Fatalf("%s.%s: kind %s not covered by this test", typ.Name(), typ.Field(i).Name, f.Kind())
			}
			if equal(a, b) {
				t.Errorf("%s.Equal ignores field %s", typ.Name(), typ.Field(i).Name)
			}
			if !equal(b, b) {
				t.Errorf("%s.Equal: a value differs from itself after setting %s", typ.Name(), typ.Field(i).Name)
			}
		}
	}
	check(t, Agent{}, func(a, b reflect.Value) bool { return a.Interface().(Agent).Equal(b.Interface().(Agent)) })
	check(t, LLM{}, func(a, b reflect.Value) bool { return a.Interface().(LLM).Equal(b.Interface().(LLM)) })
	check(t, Tool{}, func(a, b reflect.Value) bool { return a.Interface().(Tool).Equal(b.Interface().(Tool)) })
}

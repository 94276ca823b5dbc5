-- A profile that returns the wrong type (tests/lua/profile_test.lua).
return "not a table"

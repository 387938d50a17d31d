// Package engines links every repository engine into a program, for store.Open:
//
//	import _ "github.com/tandemhq/tandem/internal/store/engines"
package engines

import (
	_ "github.com/tandemhq/tandem/internal/store/storepg"     // postgres://
	_ "github.com/tandemhq/tandem/internal/store/storesqlite" // SQLite files
)

#!/usr/bin/env node
// The ipukit command, on the built app (dist/): `npm run build` (or any root command) first.
import { main } from '../dist/cli.js'

process.exitCode = await main(process.argv.slice(2))

#!/usr/bin/env node
// @conf-chat/node first: it installs the Promise.withResolvers polyfill that libp2p needs on Node 20
import '@conf-chat/node'
import { fatal } from './errors.js'
import { runNodeProgram } from './node-program.js'

fatal.exitOnUncaught()
const code = await runNodeProgram(process.argv).catch(fatal.reportFatal)
// libp2p may leave timers behind after stop(): do not wait for them
process.exit(code)

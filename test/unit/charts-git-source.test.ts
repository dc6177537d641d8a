import { describe, expect, it } from 'vitest'
import { credentialFor, normalizeRepoPath } from '../../src/charts/git-chart-source.js'
import { redact } from '../../src/charts/git-command.js'
import { AirgapError } from '../../src/errors.js'

describe('git chart sources: the pure parts', () => {
  it('normalizes a chart path inside a repository and refuses one that leaves it', () => {
    expect(normalizeRepoPath('applications/astrago/astrago')).toBe('applications/astrago/astrago')
    expect(normalizeRepoPath('/applications//astrago/./astrago/')).toBe('applications/astrago/astrago')
    expect(normalizeRepoPath('.')).toBe('')
    expect(normalizeRepoPath('')).toBe('')
    expect(() => normalizeRepoPath('charts/../../etc')).toThrow(AirgapError)
  })

  it('picks the credential of the host a URL names (host:port first, then host)', () => {
    const credentials = {
      'git.corp.example': { username: 'a', password: 'pa' },
      'git.corp.example:8443': { username: 'b', password: 'pb' },
    }
    expect(credentialFor('https://git.corp.example/team/charts.git', credentials)?.username).toBe('a')
    expect(credentialFor('https://git.corp.example:8443/team/charts.git', credentials)?.username).toBe('b')
    expect(credentialFor('git@git.corp.example:team/charts.git', credentials)?.username).toBe('a')
    expect(credentialFor('https://github.com/xiilab/astrago-deployment', credentials)).toBeUndefined()
    expect(credentialFor('https://git.corp.example/x', undefined)).toBeUndefined()
  })

  it('keeps user names, passwords and tokens out of messages', () => {
    expect(redact("fatal: unable to access 'https://user:tok3n@git.corp.example/x.git/'")).toBe(
      "fatal: unable to access 'https://***@git.corp.example/x.git/'",
    )
    expect(redact('the password s3cret was refused', { username: 'u', password: 's3cret' })).toBe(
      'the password *** was refused',
    )
  })
})

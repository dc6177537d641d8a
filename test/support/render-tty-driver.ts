/**
 * A tiny astrago-airgap command for the terminal renderer's tmux tests (test/integration/cli/render-tty.test.ts). It runs
 * through the real command base class (renderer choice, error output, Ctrl-C handling) and feeds the renderer a task
 * tree whose titles hold CJK characters and emoji and are wider than a 200-column terminal:
 *
 *   node --import tsx test/support/render-tty-driver.ts done|fail|wait
 *
 * `done` runs the tasks for about a second and ends them; `fail` throws midway, with tasks still running; `wait`
 * keeps the tasks running (progress keeps coming) until Ctrl-C or SIGTERM, then ends as an interrupted command does.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Args, Config } from '@oclif/core'
import { AirgapCommand } from '../../src/cli/base-command.js'
import { Task } from '../../src/events/tasks.js'

const ROOT = new URL('../..', import.meta.url).pathname
const WIDE = '漢字の画像🚀📦🐳한국어'

/** A title of about `cells` terminal cells, mixing ASCII, CJK and emoji. */
function wideTitle(prefix: string, cells: number): string {
  let title = prefix
  while (title.length * 1.5 < cells) title += ` ${WIDE} docker.io/library/nginx:1.27`
  return title
}

class RenderDriver extends AirgapCommand<{ mode: string }> {
  static override args = { mode: Args.string({ required: true, options: ['done', 'fail', 'wait'] }) }

  async run(): Promise<{ mode: string }> {
    const { args, flags } = await this.parse(RenderDriver)
    const sink = await this.sink(flags)
    const root = new Task(sink, 'bundle', wideTitle('📦 バンドル demo 1.0.0', 260))
    const images = root.child('bundle.fetch', wideTitle('イメージ images', 240), {
      total: 64 << 20,
      unit: 'bytes',
    })
    const stage = root.child('stage.apply', wideTitle('🚀 배포 stage gpu-operator', 230))
    const start = Date.now()
    for (let step = 1; ; step += 1) {
      await sleep(100)
      images.progress(Math.min(step, 63) << 20, 64 << 20, 'bytes', 0)
      if (args.mode === 'fail' && step === 8) throw new Error('寿司 🍣 the driver failed on purpose')
      if (args.mode === 'done' && Date.now() - start > 1000) break
      if (this.signal.aborted) throw this.signal.reason
    }
    images.end('done')
    stage.end('skipped', '既に適用済み ✅ already applied')
    root.end('done', `${WIDE} demo-1.0.0.tar`)
    return { mode: args.mode }
  }
}

const config = await Config.load(ROOT)
await RenderDriver.run(process.argv.slice(2), config)
